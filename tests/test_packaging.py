"""What ``python -m build`` makes: twine accepts it, and it holds the package and nothing else.

The sdist is the source of the package (what a wheel is built from), not a copy of the repository:
the tests need the repository's docs, notebook and configuration, so they run from a clone and are
left out of the sdist. .ci/run installs the wheel into a clean virtualenv and runs a smoke test.
"""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Every module of the package, subfolders included, as paths inside it.
MODULES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "lossboard").rglob("*.py"))
#: The dashboard's frontend, served by the TensorBoard plugin: package data.
STATIC = sorted(
    p.relative_to(ROOT).as_posix()
    for p in (ROOT / "lossboard" / "dashboard" / "static").glob("*.js")
)
JUNK = re.compile(r"(^|/)(tests|\.venv|\.nox|__pycache__|logs|site|dist|build|\.git)(/|$)|\.pyc$")


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_twine_accepts_both(dist):
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", dist["sdist"], dist["wheel"]],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("PASSED") == 2


def test_sdist_holds_the_package_readme_license_and_config_only(dist):
    with tarfile.open(dist["sdist"]) as tar:
        names = [name.split("/", 1)[1] for name in tar.getnames() if "/" in name]
    for needed in ("README.md", "LICENSE", "setup.cfg", "pyproject.toml", "PKG-INFO"):
        assert needed in names
    assert set(MODULES) <= set(names)
    assert set(STATIC) <= set(names)
    assert [n for n in names if JUNK.search(n)] == []


def test_wheel_holds_the_package_and_its_command(dist):
    with zipfile.ZipFile(dist["wheel"]) as whl:
        names = whl.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
        metadata = whl.read(f"{info}/METADATA").decode()
    assert {n.split("/")[0] for n in names} == {"lossboard", info}
    assert sorted(n for n in names if n.startswith("lossboard/")) == sorted(MODULES + STATIC)
    assert STATIC and "lossboard/dashboard/static/index.js" in STATIC
    assert "lossboard = lossboard.cli:main" in entry_points
    assert "[tensorboard_plugins]\nlossboard = lossboard.dashboard.plugin:LossboardPlugin" in (
        entry_points
    )
    assert f"{info}/licenses/LICENSE" in names
    cfg = _setup_cfg()
    assert f"Requires-Python: {cfg['options']['python_requires']}" in metadata
    assert "Provides-Extra: plot" in metadata and "Provides-Extra: test" in metadata


def test_declared_pythons_are_the_ones_nox_tests():
    """setup.cfg's Python classifiers name exactly the Pythons of the noxfile's sessions."""
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    tested = set(re.findall(r"\"(3\.\d+)\"", " ".join(re.findall(r"python=(.+)\)", noxfile))))
    declared = set(
        re.findall(r"Programming Language :: Python :: (3\.\d+)", (ROOT / "setup.cfg").read_text())
    )
    assert tested and declared == tested
    oldest = min(tested, key=lambda v: tuple(map(int, v.split("."))))
    assert _setup_cfg()["options"]["python_requires"] == f">={oldest}"
