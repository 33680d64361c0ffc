"""The docs build with warnings as errors, and every Python example in them runs and prints what
the page says it prints.

Convention for expected output
------------------------------
A ```python block may be followed directly (blank lines allowed) by a ```text block whose first
line is exactly ``# output``. The rest of that text block is what the Python block prints to
stdout, compared after stripping trailing spaces from every line and blank lines at both ends.
``...`` matches any text, including several lines (doctest's ELLIPSIS): use it for run folders
with timestamps and for long tables whose middle does not matter.

Printed training numbers are float32 results whose last digits change with the CPU (TensorFlow's
oneDNN, AVX-512): a page made on one machine must pass on another. So text and integers compare
exactly, and a number written with a decimal point or an exponent matches any number within
``REL_TOL`` of it, or within one unit of its last digit when both are printed to the same
digits (``0.2406`` matches 0.2405 to 0.2407; ``3.192994713783264`` matches
``3.1929946839809418``). As a wider number can
widen a table, runs of spaces and rule lines of dashes match any length. Every page runs twice,
with oneDNN off and on (``TF_ENABLE_ONEDNN_OPTS``)::

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


def run_page(
    page: Path, cwd: Path, onednn: str | None = None
) -> tuple[list[Block], list[str], subprocess.CompletedProcess]:
    """Runs the page's blocks as one script; returns the blocks and each block's stdout.

    ``onednn`` ("0" or "1") sets ``TF_ENABLE_ONEDNN_OPTS``; None keeps the environment's.
    """
    page_blocks = blocks(page.read_text())
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "100"}
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
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


#: Relative tolerance for a printed number with a decimal point or exponent: float32 training
#: results differ between CPUs by about 1e-7 relative per operation; a few epochs stay far
#: below this, while a real error (a mean of batch means, a lost batch) is 1e-4 or more.
REL_TOL = 1e-5
#: A number as printed; never part of a word (``seed0``, ``lr_0.1``) or of a dotted string
#: (``2.16.2``, ``127.0.0.1``), which stay text.
NUMBER = r"(?<![\w.])-?(?:\d+\.\d+|\d+)(?:[eE][-+]?\d+)?(?!\w|\.\d)"
_TOKEN = re.compile(rf"(?P<number>{NUMBER})|(?P<space>[ \t]+)|(?P<rule>-{{3,}})")
_EXACT = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1 | doctest.DONT_ACCEPT_BLANKLINE


def _digits(text: str) -> tuple[int, int]:
    """(decimals, significant digits) of a printed number's mantissa."""
    mantissa = re.split(r"[eE]", text.lstrip("-"))[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return decimals, len(mantissa.replace(".", "").lstrip("0"))


def _close(want: str, got: str) -> bool:
    """Integers exactly; other numbers within REL_TOL, or one unit of the last digit when both
    are printed to the same digits and there are three significant digits or more."""
    if re.fullmatch(r"-?\d+", want) or re.fullmatch(r"-?\d+", got):
        return want == got  # an integer, or a decimal printed as one: exact
    (decimals, significant), (got_decimals, _) = _digits(want), _digits(got)
    exponent = int(re.split(r"[eE]", want)[1]) if re.search(r"[eE]", want) else 0
    flip = got_decimals == decimals and significant >= 3  # ``:.4f`` rounding either way
    unit = 10.0 ** (exponent - decimals) if flip else 0.0
    a, b = float(want), float(got)
    return abs(a - b) <= max(REL_TOL * abs(a), unit * (1 + 1e-9))


def _piece(text: str) -> tuple[re.Pattern[str], list[str]]:
    """A regex for text between two ``...``: numbers captured, spaces and rules any length."""
    parts, numbers, last = [], [], 0
    for token in _TOKEN.finditer(text):
        parts.append(re.escape(text[last : token.start()]))
        kind = token.lastgroup
        if kind == "number":
            numbers.append(token.group())
            parts.append(f"[ \t]*({NUMBER})")  # a wider number shifts right-aligned columns
        else:
            parts.append({"space": r"[ \t]*", "rule": "-{3,}"}[kind])
        last = token.end()
    parts.append(re.escape(text[last:]))
    return re.compile("".join(parts)), numbers


def matches(expected: str, got: str) -> bool:
    """``got`` is what ``expected`` shows, up to the float digits a CPU can change.

    As doctest's ELLIPSIS: the pieces between ``...`` are found in order, each at the first
    place it fits from where the last one ended (no backtracking: linear in the output).
    """
    want, have = normalize(expected), normalize(got)
    if doctest.OutputChecker().check_output(want + "\n", have + "\n", _EXACT):
        return True
    pieces = want.split("...")
    at = 0
    for i, text in enumerate(pieces):
        pattern, numbers = _piece(text)
        end = len(have) if i == len(pieces) - 1 else None
        for found in pattern.finditer(have, at) if i else [pattern.match(have)]:
            if found is None or (end is not None and found.end() != end):
                continue
            if all(_close(w, g) for w, g in zip(numbers, found.groups(), strict=True)):
                at = found.end()
                break
        else:
            return False
    return True


@pytest.mark.parametrize("onednn", ["0", "1"], ids=["onednn-off", "onednn-on"])
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_examples_run_and_print_what_the_page_shows(page, onednn, tmp_path):
    """A page's examples run top to bottom, like a notebook, and print their ``# output``,
    with TensorFlow's oneDNN off and on (it changes float32 training digits per CPU)."""
    page_blocks, outputs, out = run_page(page, tmp_path, onednn)
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


@pytest.mark.parametrize(
    "expected, got",
    [
        ("loss 0.1234\n...\ndone", "loss 0.1234\na\nb\ndone  "),
        ("run logs/...-quickstart", "run logs/20261125-142630-quickstart"),
        # the two numbers oneDNN changed on an AVX-512 machine (issue 22)
        ("{'loss': 3.192994713783264}", "{'loss': 3.1929946839809418}"),
        ("epoch 2: loss 2.104818", "epoch 2: loss 2.104819"),
        ("loss 0.2406  val 0.3363", "loss 0.2405  val 0.3364"),  # one unit of the last digit
        ("a     1.5\n-----  ---\nbb    2.25", "a     1.5000001\n-----  ---------\nbb    2.25"),
        ("x 1e-05", "x 1.00001e-05"),
        ("      x\n10.0000", "     x\n 9.9999"),  # a right-aligned column one digit narrower
        ("epoch 3 ...", "epoch 3 of 8"),
    ],
)
def test_float_digits_a_cpu_can_change_match(expected, got):
    assert matches(expected, got)


@pytest.mark.parametrize(
    "expected, got",
    [
        ("loss 0.1234", "loss 0.1236"),  # two units of the last printed digit
        ("loss 3.192994713783264", "loss 3.1931"),  # 3e-5 relative: beyond REL_TOL
        ("loss 0.5", "loss 0.5003"),  # a mean of batch means instead of the exact mean
        ("loss 0.5", "loss 0.7"),  # same digits: two units
        ("loss 0.2406", "loss 0.24075"),  # other digits: REL_TOL alone
        ("3 runs", "4 runs"),  # integers are exact
        ("seed0", "seed1"),  # digits in a word are text
        ("lr_0.1", "lr_0.2"),
        ("a\nb", "a"),  # a missing line
        ("tensorflow 2.16.2", "tensorflow 2.17.2"),  # dotted strings are text
        ("127.0.0.1", "127.1.0.1"),
        ("runs: 4.", "runs: 5."),  # an integer before a full stop
        ("True", "1"),
        ("lr=0.1 loss 0.240594", "lr=0.2 loss 0.240594"),  # short numbers: REL_TOL only
        ("1e-05", "2e-05"),
        ("loss 2.0", "loss 2"),  # printed as an integer now
        ("loss 1.5", "loss 1.5 nan"),
        ("loss 1.0", "loss nan"),
    ],
)
def test_a_wrong_number_or_text_fails(expected, got):
    assert not matches(expected, got)


def test_blocks_pair_python_with_its_output():
    page = "```python\nprint(2)\n```\n\n```text\n# output\n2\n```\n\n```python\nx = 1\n```\n"
    found = blocks(page)
    assert [(b.code, b.expected) for b in found] == [("print(2)\n", "2"), ("x = 1\n", None)]


_COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8}
_COUNT = rf"\b(\d+|{'|'.join(_COUNT_WORDS)})\s+(?:small\s+|demo\s+)?"
_CLAIM = re.compile(_COUNT + r"(runs|seeds|epochs|learning rates)\b", re.IGNORECASE)


def _demo_paragraphs() -> list[tuple[str, str]]:
    """``(page, paragraph)`` of the README and the docs that speak of the demo."""
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    found = []
    for page in pages:
        if page.name == "changelog.md":  # history: it may say what the demo was
            continue
        for paragraph in re.split(r"\n\s*\n", page.read_text()):
            if "demo" in paragraph.lower():
                found.append((page.name, " ".join(paragraph.split())))
    return found


def test_docs_describe_the_demo_as_it_is():
    """Every count of runs, seeds, epochs or learning rates said next to the demo is the demo's,
    and the README, install and comparing pages state its shape in full."""
    from lossboard import demo

    truth = {
        "runs": len(demo.DEMO_CONFIGS) * len(demo.DEMO_SEEDS),
        "seeds": len(demo.DEMO_SEEDS),
        "epochs": demo.DEMO_EPOCHS,
        "learning rates": len(demo.DEMO_CONFIGS),
    }
    claims = []
    for page, paragraph in _demo_paragraphs():
        for match in _CLAIM.finditer(paragraph):
            count, kind = match.group(1).lower(), match.group(2).lower()
            number = int(count) if count.isdigit() else _COUNT_WORDS[count]
            claims.append((page, match.group(0), number == truth[kind]))
    wrong = [(page, said) for page, said, right in claims if not right]
    assert not wrong, f"the demo is {demo.shape()}; the docs say {wrong}"
    text = {name: " ".join((ROOT / name).read_text().split()) for name in ("README.md",)}
    text |= {
        name: " ".join((DOCS / name).read_text().split()) for name in ("install.md", "comparing.md")
    }
    for name, words in text.items():
        assert demo.shape() in words, f"{name} does not say what the demo trains: {demo.shape()}"
    assert len(claims) >= 10


def test_every_picture_is_of_the_current_demo():
    """docs/images/make_screenshot.py stamps each picture with the demo's shape: a picture of
    another demo (or made by hand) fails until the script is run again."""
    sys.path.insert(0, str(DOCS / "images"))
    try:
        from make_screenshot import KEY, png_text
    finally:
        sys.path.pop(0)
    from lossboard import demo

    pictures = sorted((DOCS / "images").glob("*.png"))
    assert len(pictures) >= 6
    stale = {p.name: png_text(str(p)).get(KEY) for p in pictures}
    stale = {name: said for name, said in stale.items() if said != demo.shape()}
    assert not stale, f"run python docs/images/make_screenshot.py; made of another demo: {stale}"
    shown = set(re.findall(r"\(images/([^)]+\.png)\)", (DOCS / "comparing.md").read_text()))
    assert shown == {p.name for p in pictures}  # every picture is shown, none is missing


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


def _shown_commands(text: str) -> list[tuple[str, str]]:
    """``(command, output)`` of each ```text block that starts with ``$ lossboard compare``
    and groups runs (``--over``; the per-run tables show run names made of the time)."""
    found = []
    pattern = r"```text\n\$ (lossboard compare [^\n]*--over[^\n]*)\n(.*?)```"
    for match in re.finditer(pattern, text, re.S):
        found.append((match.group(1), match.group(2)))
    return found


@pytest.mark.parametrize("name", ["comparing.md", "reporting.md"])
def test_the_compare_tables_and_latex_shown_are_what_the_command_prints(name, tmp_path):
    """The terminal tables and the LaTeX file on the page, against the real command run on the
    runs the page's examples write (those examples draw with NumPy: no CPU-dependent digits)."""
    page = DOCS / name
    _, _, ran = run_page(page, tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    shown = _shown_commands(page.read_text())
    assert shown
    for command, output in shown:
        args = command.split()[1:] + ["--latex", str(tmp_path / "table.tex")]
        out = subprocess.run(
            [sys.executable, "-m", "lossboard", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        assert normalize(out.stdout.split("wrote ")[0]) == normalize(output), command
    latex = re.search(r"holds:\n\n```text\n(.*?)```", page.read_text(), re.S)
    if latex:
        assert normalize((tmp_path / "table.tex").read_text()) == normalize(latex.group(1))
