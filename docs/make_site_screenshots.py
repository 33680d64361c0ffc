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
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = (
    ("home.png", ""),
    ("quickstart.png", "quickstart/"),
    ("how-it-works.png", "how-it-works/"),
    ("api.png", "api/"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(site: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", site],
        cwd=ROOT,
        check=True,
    )


def screenshot(chromium: str, url: str, picture: str) -> None:
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # offline
                f"--user-data-dir={profile}",
                f"--screenshot={picture}",
                "--window-size=1400,2000",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main(out: str) -> list[str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lossboard-site-") as tmp:
        site = os.path.join(tmp, "site")
        build(site)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=site,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                    break
                except OSError:
                    time.sleep(0.1)
            pictures = []
            for name, path in PAGES:
                picture = os.path.join(out, name)
                screenshot(chromium, f"http://127.0.0.1:{port}/{path}", picture)
                pictures.append(picture)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return pictures


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="lossboard-shots-")
    for written in main(target):
        print(written)
