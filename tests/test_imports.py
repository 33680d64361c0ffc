"""Importing lossboard leaves TensorFlow's runtime alone: GPU and multi-worker set-up still work.

Users import first and configure devices after; a module-level tensor would start TensorFlow's
eager context, after which device configuration raises "cannot be modified after being
initialized". The 2-worker MultiWorkerMirroredStrategy job of tests/test_distributed.py imports
lossboard first too.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lossboard

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import importlib, pkgutil
import pytest

import lossboard
for module in pkgutil.walk_packages(lossboard.__path__, "lossboard."):
    if module.name != "lossboard.__main__":
        importlib.import_module(module.name)
for name in lossboard.__all__:
    getattr(lossboard, name)

import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.set_soft_device_placement(True)
assert len(tf.config.list_logical_devices("CPU")) == 2

from lossboard import LossLogger
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    logger = LossLogger(LOGDIR)
per_replica = strategy.run(lambda: tf.constant([1.0, 2.0]))
logger.on_train_batch_end(0, {"loss": per_replica})
print(logger.on_epoch_end(0))
"""


def test_every_import_then_device_configuration(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    script = SCRIPT.replace("LOGDIR", repr(str(tmp_path / "run")))
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "{'loss': 1.5}"


# ----------------------------------------------------------------------------- the layout
LIBRARY = Path(lossboard.__file__).parent
FREE_OF_TENSORFLOW = ("events", "reader", "compare", "dashboard")
SHIMS = ("plot.py", "aggregate.py")


def _module_names() -> dict[str, Path]:
    names = {}
    for path in LIBRARY.rglob("*.py"):
        parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _imported(path: Path, known: dict[str, Path]) -> set[str]:
    """Every lossboard module ``path`` imports, anywhere (TYPE_CHECKING and functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lossboard")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lossboard"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return {name for name in found if name in known}


def test_no_import_circle():
    """The modules import each other one way, counting imports under TYPE_CHECKING."""
    known = _module_names()
    graph = {name: _imported(path, known) - {name} for name, path in known.items()}
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            raise AssertionError("import circle: " + " -> ".join(stack[stack.index(name) :]))
        if name in done:
            return
        for other in sorted(graph[name]):
            if not known[other].name == "__init__.py":  # a package's init maps, never drives
                visit(other, [*stack, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_folders_show_the_paths():
    """At most 10 modules at the top; each folder's docstring names every file in it; the
    TensorFlow-free folders never import TensorFlow at module level."""
    top = sorted(p.name for p in LIBRARY.glob("*.py"))
    assert len(top) <= 10, top
    for folder in sorted(p for p in LIBRARY.iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
        missing = [f.name for f in folder.glob("*.py") if f.name != "__init__.py"]
        missing = [name for name in missing if f"``{name}``" not in doc]
        assert not missing, f"{folder.name}/__init__.py does not map {missing}"
    # the import paths the docs teach stay as one-line re-exports of the compare folder
    for shim in SHIMS:
        assert "from lossboard.compare." in (LIBRARY / shim).read_text()
    stems = [p.stem for p in LIBRARY.rglob("*.py") if p.stem != "__init__" and p.parent != LIBRARY]
    stems += [p.stem for p in LIBRARY.glob("*.py") if p.name not in SHIMS]
    assert len(stems) == len(set(stems)), "two modules share a name"


def test_tensorflow_free_parts_import_without_it():
    """events/, reader/, compare/, dashboard/ (and the command line) work where TensorFlow is
    not even importable: the reading and comparing side, and the TensorBoard plugin that
    TensorBoard imports at start-up, never need it."""
    names = [
        n for n in _module_names() if n.split(".")[1:2] and n.split(".")[1] in FREE_OF_TENSORFLOW
    ]
    names += ["lossboard.cli", "lossboard.run_dirs", "lossboard.layout", "lossboard.warn"]
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        + "".join(f"import {name}\n" for name in sorted(names))
        + "print('imported', len(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.parametrize(
    ("backend", "where", "fix"),
    [
        ("jax", "env", "KERAS_BACKEND=tensorflow (or unset it)"),
        ("torch", "env", "KERAS_BACKEND=tensorflow (or unset it)"),
        ("jax", "keras.json", '"backend": "tensorflow" in that file'),
    ],
)
def test_another_keras_backend_is_named_with_its_fix(tmp_path, backend, where, fix):
    """KERAS_BACKEND=jax (or keras.json's "backend") made Keras fail inside its own import
    ("No module named 'jax'"): the error says lossboard needs TensorFlow's backend, and how."""
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KERAS_HOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if where == "env":
        env["KERAS_BACKEND"] = backend
        source = f"KERAS_BACKEND={backend!r} in the environment"
    else:
        (tmp_path / "keras.json").write_text(json.dumps({"backend": backend}))
        env["KERAS_HOME"] = str(tmp_path)
        source = f'"backend": "{backend}" in {tmp_path / "keras.json"}'
    script = f"import lossboard\nlossboard.LossLogger({str(tmp_path / 'run')!r})\n"
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: lossboard's LossLogger runs on TensorFlow"), last
    assert f"set to the {backend!r} backend ({source})" in last
    assert f"To fix it, set {fix} before Python starts" in last
    assert not (tmp_path / "run").exists()  # nothing was created
