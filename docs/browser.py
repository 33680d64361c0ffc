"""What the docs' picture scripts share: a local server on a free port, and headless Chromium.

Used by docs/make_site_screenshots.py (the built site) and docs/images/make_screenshot.py (a real
TensorBoard). Chromium is Debian's package ``chromium``; everything stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_chromium() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    return chromium


@contextlib.contextmanager
def served(
    command: Sequence[str], ready_url: str, cwd: str | None = None, timeout: float = 60.0
) -> Iterator[None]:
    """Runs a server ``command`` until the block ends; waits until ``ready_url`` answers."""
    server = subprocess.Popen(
        list(command), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def screenshot(
    chromium: str, url: str, picture: str, size: str, *flags: str, timeout: float = 180
) -> None:
    """A headless Chromium screenshot of ``url`` at ``size`` ("1400,900"), in a fresh profile."""
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                *flags,
                f"--user-data-dir={profile}",
                f"--screenshot={picture}",
                f"--window-size={size}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
