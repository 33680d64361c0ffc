"""A real ``tensorboard`` server on 127.0.0.1 for the tests, and requests to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, body: dict | None = None) -> Any:
    """GET ``url`` (POST ``body`` as JSON when given) and its JSON answer; raises on HTTP errors."""
    headers = {"X-XSRF-Protected": "1", "Content-Type": "application/json"}
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=30) as r:
        return json.loads(r.read())


def fetch(url: str) -> tuple[int, bytes]:
    """``(status, body)`` of a GET, HTTP errors included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def serve(root: str | os.PathLike, runs: int, payload: Any, *extra: str) -> Iterator[tuple]:
    """Starts `tensorboard --logdir root` on 127.0.0.1; yields (base_url, payload) once it
    lists ``runs`` runs; stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(root),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--reload_interval",
            "1",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if len(get_json(base + "/data/runs")) >= runs:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"tensorboard did not start: {proc.stderr.read().decode()[-2000:]}"
                )
            time.sleep(0.5)
        yield base, payload
    finally:
        proc.terminate()
        proc.wait(timeout=30)
