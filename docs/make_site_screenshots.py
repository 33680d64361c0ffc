"""Screenshots the built docs site in a real browser: python docs/make_site_screenshots.py [OUT]

1. builds the site with ``mkdocs build --strict`` into a temporary folder;
2. serves it with ``python -m http.server`` on 127.0.0.1 (a free port);
3. screenshots the Home, Quickstart, How it works and API pages with headless Chromium
   (Debian's package ``chromium``), with every host name but 127.0.0.1 unresolvable, so the
   pictures show the site as an offline reader sees it (code highlighted, no CDN);
4. writes ``home.png``, ``quickstart.png``, ``how-it-works.png`` and ``api.png`` to OUT
   (default: a new temporary folder) and prints their paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from browser import find_chromium, free_port, screenshot, served

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = (
    ("home.png", ""),
    ("quickstart.png", "quickstart/"),
    ("how-it-works.png", "how-it-works/"),
    ("api.png", "api/"),
)


def build(site: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", site],
        cwd=ROOT,
        check=True,
    )


def main(out: str) -> list[str]:
    chromium = find_chromium()
    os.makedirs(out, exist_ok=True)
    pictures = []
    with tempfile.TemporaryDirectory(prefix="lossboard-site-") as tmp:
        site = os.path.join(tmp, "site")
        build(site)
        port = free_port()
        command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        with served(command, f"http://127.0.0.1:{port}/", cwd=site):
            for name, path in PAGES:
                picture = os.path.join(out, name)
                offline = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
                url = f"http://127.0.0.1:{port}/{path}"
                screenshot(chromium, url, picture, "1400,2000", offline, timeout=120)
                pictures.append(picture)
    return pictures


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="lossboard-shots-")
    for written in main(target):
        print(written)
