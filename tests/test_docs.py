"""The docs build with warnings as errors, and every Python example in them runs and prints what
the page says it prints.

Convention for expected output
------------------------------
A ```python block may be followed directly (blank lines allowed) by a ```text block whose first
line is exactly ``# output``. The rest of that text block is what the Python block prints to
stdout, compared exactly after stripping trailing spaces from every line and blank lines at both
ends. ``...`` matches any text, including several lines (doctest's ELLIPSIS): use it for run
folders with timestamps and for long tables whose middle does not matter::

    ```python
    print(1 + 1)
    ```

    ```text
    # output
    2
    ```

A Python block that prints something must be followed by its ``# output`` block; a block that
prints nothing must not have one. A page's blocks run in order as one script (like a notebook),
in a fresh directory; stderr (TensorFlow's log, warnings) is not compared.

To see what a page's blocks print, to paste into the page::

    python tests/test_docs.py docs/quickstart.md
"""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())
OUTPUT_MARKER = "# output"
SEPARATOR = "<<<lossboard-docs-block {}>>>"
#: Pages whose blocks may print without an ``# output`` block (their output is not compared).
OUTPUT_NOT_SHOWN: set[str] = set()


@dataclass
class Block:
    code: str
    expected: str | None  # None: the page shows no output for this block
    line: int  # 1-based line of the ```python fence


def blocks(text: str) -> list[Block]:
    """The page's Python blocks, each with the ``# output`` block that follows it, if any."""
    lines = text.splitlines()
    found: list[Block] = []
    i = 0

    def fenced(start: int) -> tuple[list[str], int]:
        end = start + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        return lines[start + 1 : end], end + 1

    while i < len(lines):
        if lines[i] == "```python":
            start = i
            code, i = fenced(i)
            j = i
            while j < len(lines) and not lines[j].strip():
                j += 1
            expected = None
            if j < len(lines) and lines[j] == "```text" and lines[j + 1 : j + 2] == [OUTPUT_MARKER]:
                body, i = fenced(j + 1)
                expected = "\n".join(body)
            found.append(Block("\n".join(code) + "\n", expected, start + 1))
        else:
            i += 1
    return found


def script(page_blocks: list[Block]) -> str:
    parts = []
    for n, block in enumerate(page_blocks):
        parts.append(f"print({SEPARATOR.format(n)!r}, flush=True)\n")
        parts.append(block.code)
    parts.append(f"print({SEPARATOR.format(len(page_blocks))!r}, flush=True)\n")
    return "\n".join(parts)


def run_page(page: Path, cwd: Path) -> tuple[list[Block], list[str], subprocess.CompletedProcess]:
    """Runs the page's blocks as one script; returns the blocks and each block's stdout."""
    page_blocks = blocks(page.read_text())
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "100"}
    out = subprocess.run(
        [sys.executable, "-c", script(page_blocks)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    pieces = re.split(r"<<<lossboard-docs-block \d+>>>\n", out.stdout)
    return page_blocks, [normalize(p) for p in pieces[1:-1]], out


def normalize(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip("\n")


def matches(expected: str, got: str) -> bool:
    want = normalize(expected) + "\n"
    return doctest.OutputChecker().check_output(want, normalize(got) + "\n", doctest.ELLIPSIS)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_examples_run_and_print_what_the_page_shows(page, tmp_path):
    """A page's examples run top to bottom, like a notebook, and print their ``# output``."""
    page_blocks, outputs, out = run_page(page, tmp_path)
    assert page_blocks
    assert out.returncode == 0, f"{page.name} failed:\n{out.stderr[-3000:]}"
    assert len(outputs) == len(page_blocks), out.stdout[-3000:]
    for block, got in zip(page_blocks, outputs, strict=True):
        where = f"{page.name}, block at line {block.line}"
        if block.expected is None:
            shown = page.name in OUTPUT_NOT_SHOWN
            assert not got or shown, f"{where} prints but the page has no '# output':\n{got}"
        else:
            assert matches(block.expected, got), (
                f"{where} printed something else.\n--- page\n{normalize(block.expected)}\n"
                f"--- printed\n{got}"
            )


def test_a_wrong_number_fails():
    """The comparison is exact: one changed digit, or a missing line, does not match."""
    assert matches("loss 0.1234\n...\ndone", "loss 0.1234\na\nb\ndone  ")
    assert matches("run logs/...-quickstart", "run logs/20261125-142630-quickstart")
    assert not matches("loss 0.1234", "loss 0.1235")
    assert not matches("a\nb", "a")


def test_blocks_pair_python_with_its_output():
    page = "```python\nprint(2)\n```\n\n```text\n# output\n2\n```\n\n```python\nx = 1\n```\n"
    found = blocks(page)
    assert [(b.code, b.expected) for b in found] == [("print(2)\n", "2"), ("x = 1\n", None)]


def build_site(site: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("site") / "site"
    build_site(path)
    return path


def test_docs_build_strict(site):
    api = (site / "api" / "index.html").read_text()
    assert "on_train_batch_end" in api and "sample_weight" in api  # generated from docstrings


def test_site_works_offline(site):
    """No script or stylesheet from a CDN; code is highlighted at build time by Pygments."""
    for html in site.rglob("*.html"):
        text = html.read_text()
        remote = re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]*\"", text)
        remote = [tag for tag in remote if 'rel="canonical"' not in tag]
        assert not remote, f"{html.relative_to(site)} loads {remote}"
    quickstart = (site / "quickstart" / "index.html").read_text()
    assert 'class="highlight"' in quickstart and '<span class="kn">import</span>' in quickstart


def test_site_shows_version_and_changelog(site):
    import lossboard

    index = (site / "index.html").read_text()
    assert f"lossboard {lossboard.__version__}" in index
    changelog = (site / "changelog" / "index.html").read_text()
    first_heading = next(
        line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## ")
    )
    assert first_heading[3:].strip().split()[0] in changelog


@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")), reason="no chromium"
)
def test_site_screenshots_in_a_real_browser(tmp_path):
    """docs/make_site_screenshots.py renders the pages offline in headless Chromium."""
    out = subprocess.run(
        [sys.executable, str(DOCS / "make_site_screenshots.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    pictures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pictures == ["api.png", "home.png", "how-it-works.png", "quickstart.png"]
    assert all((tmp_path / name).stat().st_size > 50_000 for name in pictures)  # not blank


if __name__ == "__main__":
    import tempfile

    for name in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as tmp:
            found, printed, result = run_page(Path(name).resolve(), Path(tmp))
        if result.returncode:
            print(result.stderr[-3000:])
        for block, text in zip(found, printed, strict=False):
            print(f"=== {name}: block at line {block.line}")
            print(text)
