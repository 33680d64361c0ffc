"""Makes the pictures in docs/comparing.md from the demo: python docs/images/make_screenshot.py

1. trains what ``lossboard demo`` trains (``lossboard.demo.shape()``: the same configurations,
   seeds and epochs) into ``logs/demo/seeds`` of a temporary folder, and their means over the
   seeds into ``logs/demo/mean``, exactly as the demo does;
2. starts a real TensorBoard server on 127.0.0.1 from that folder, with a relative ``--logdir``
   (so no machine path shows in its sidebar), and screenshots its Scalars and HParams dashboards
   of the seeds and of the means with headless Chromium (Debian's package ``chromium``). The Time
   Series dashboard is left out: headless Chromium leaves its charts blank (they draw on a WebGL
   canvas that loads lazily), and a picture of empty charts would mislead;
3. draws ``lossboard plot`` of the seeds, run by run and ``--over seed`` (bands of the std and
   of the 95% bootstrap interval of the mean);
4. screenshots the ``lossboard`` tab (the dashboard of configurations over seeds, served by
   lossboard's TensorBoard plugin) of the seeds, in TensorBoard's light and dark themes.

``--only NAME ...`` makes only the pictures named (``--only tensorboard-lossboard.png``), so
a change to one dashboard does not rewrite every picture.

Every picture carries a PNG text chunk ``lossboard-demo`` with ``lossboard.demo.shape()``;
``tests/test_docs.py`` checks it against the demo's constants, so a change to the demo that
leaves old pictures behind fails the suite until this script is run again.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # docs/
from browser import find_chromium, free_port, screenshot, served  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
#: The PNG text chunk that says which demo a picture shows.
KEY = "lossboard-demo"
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_text(path: str) -> dict[str, str]:
    """The ``tEXt`` chunks of a PNG file, as ``{keyword: text}``."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(_SIGNATURE):
        raise ValueError(f"{path}: not a PNG file")
    found, at = {}, len(_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        if kind == b"tEXt" and b"\0" in body:
            key, text = body.split(b"\0", 1)
            found[key.decode("latin-1")] = text.decode("latin-1")
        at += 12 + length
    return found


def stamp(path: str, text: str) -> None:
    """Adds (or replaces) the ``lossboard-demo`` text chunk of the PNG at ``path``."""
    with open(path, "rb") as f:
        data = f.read()
    at, chunks = len(_SIGNATURE), []
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        chunk = data[at : at + 12 + length]
        if not (kind == b"tEXt" and chunk[8:].startswith(KEY.encode() + b"\0")):
            chunks.append(chunk)
        at += 12 + length
    body = b"tEXt" + KEY.encode("latin-1") + b"\0" + text.encode("latin-1")
    mine = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    with open(path, "wb") as f:
        f.write(_SIGNATURE + chunks[0] + mine + b"".join(chunks[1:]))  # after IHDR


def screenshots(cwd: str, logdir: str, pages: tuple[tuple[str, ...], ...]) -> list[str]:
    """Serves ``logdir`` (relative to ``cwd``) with TensorBoard; screenshots each page
    (``(picture, fragment, *chromium flags)``) that ``--only`` names, or every page."""
    pages = tuple(p for p in pages if _wanted(p[0]))
    if not pages:
        return []
    chromium = find_chromium()
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", logdir]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    written = []
    with served(command, f"http://127.0.0.1:{port}/data/runs", cwd=cwd, timeout=60):
        time.sleep(3)  # TensorBoard answers before it has loaded every run
        for picture, fragment, *flags in pages:
            url = f"http://127.0.0.1:{port}/{fragment}"
            budget = "--virtual-time-budget=60000"
            path = os.path.join(HERE, picture)
            screenshot(chromium, url, path, "1400,1000", budget, *flags)
            written.append(path)
    return written


ONLY: list[str] = []  # the pictures to make (``--only``); empty: all


def _wanted(picture: str) -> bool:
    return not ONLY or picture in ONLY


def main() -> int:
    if sys.argv[1:2] == ["--only"]:
        ONLY.extend(sys.argv[2:])
    from lossboard import demo
    from lossboard.compare.aggregate import aggregate_root
    from lossboard.compare.plot import plot_runs
    from lossboard.reader.read import read_root

    cwd = tempfile.mkdtemp(prefix="lossboard-shot-")
    os.chdir(cwd)  # relative paths everywhere: HParams' trial ids are paths from here
    seeds, mean = "logs/demo/seeds", "logs/demo/mean"
    demo.train_all(seeds, quiet=True)
    points, hparams = read_root(seeds)
    aggregate_root(points, hparams, ["seed"], mean, source=seeds)
    shape = demo.shape()
    pictures = []
    plots = (
        ("curves.png", {}, f"lossboard plot: the demo's runs ({shape})"),
        (
            "curves-over-seed.png",
            {"over": ["seed"], "hparams": hparams},
            f"lossboard plot --over seed: mean ± std of {len(demo.DEMO_SEEDS)} seeds",
        ),
        (
            "curves-over-seed-ci.png",
            {"over": ["seed"], "hparams": hparams, "band": "ci"},
            f"lossboard plot --over seed --band ci: {len(demo.DEMO_SEEDS)} seeds",
        ),
    )
    for name, options, title in plots:
        if _wanted(name):
            pictures.append(os.path.join(HERE, name))
            plot_runs(points, pictures[-1], title=title, **options)
    pictures += screenshots(
        cwd,
        seeds,
        (
            ("tensorboard-scalars.png", "#scalars&tagFilter=epoch_loss"),
            ("tensorboard-hparams.png", "#hparams"),
            ("tensorboard-lossboard.png", "#lossboard"),
            ("tensorboard-lossboard-dark.png", "#lossboard", "--force-dark-mode"),
        ),
    )
    pictures += screenshots(
        cwd,
        mean,
        (
            ("tensorboard-aggregated-scalars.png", "#scalars&tagFilter=epoch_loss"),
            ("tensorboard-aggregated-hparams.png", "#hparams"),
        ),
    )
    for picture in pictures:
        stamp(picture, shape)
        print("wrote", picture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
