"""Running the real service (``auditql serve``) as a process, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# The console script installed in this environment: what `uv run auditql` runs.
AUDITQL = str(Path(sys.executable).parent / "auditql")


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]


def wait_healthy(
    name: str, process: subprocess.Popen[bytes], base: str, log: Path, *, deadline: float
) -> None:
    """Returns once ``base/health`` answers 200; fails with the log if the process
    exits first or ``deadline`` (a ``time.monotonic()``) passes."""
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not start: {log.read_text()}")
        time.sleep(0.1)


@contextlib.contextmanager
def serving(env: dict[str, str], log: Path, *args: str) -> Iterator[Server]:
    """``auditql serve`` on a free port, running once /health answers."""
    port = free_port()
    env = {**os.environ, **env, "AUDITQL_PORT": str(port)}
    with log.open("w") as output:
        process = subprocess.Popen(
            [AUDITQL, "serve", *args],
            env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy("server", process, base, log, deadline=time.monotonic() + 60)
        yield Server(base, process)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
