"""Running the real service (``auditql serve``) as a process, for end-to-end tests."""

from __future__ import annotations

import asyncio
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
    """``auditql serve`` on a free port, running once /health answers.

    A port is free when picked, but until the server binds it any process may take it
    (an outgoing connection's local port among them): the server then exits at once,
    and is started again on another."""
    for _ in range(_ATTEMPTS - 1):
        with contextlib.suppress(_PortTakenError):
            server = _launch(env, log, args)
            break
    else:
        server = _launch(env, log, args)
    try:
        yield server
    finally:
        _stop(server.process)


_ATTEMPTS = 3


class _PortTakenError(RuntimeError):
    """The server could not bind the port picked for it."""


def _launch(env: dict[str, str], log: Path, args: tuple[str, ...]) -> Server:
    """The server, healthy; stopped again if it is not."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [AUDITQL, "serve", *args],
            env={**os.environ, **env, "AUDITQL_PORT": str(port)},
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy("server", process, base, log, deadline=time.monotonic() + 60)
    except BaseException as exc:
        _stop(process)
        if "address already in use" in str(exc):
            raise _PortTakenError(str(exc)) from exc
        raise
    return Server(base, process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)


async def assert_refused_soon(base: str) -> None:
    """After SIGTERM, new connections are refused within seconds (uvicorn looks at its
    exit flag every 0.1 s, a supervisor of workers at its signals twice a second), not
    accepted and left unanswered. Until then they are served, and one caught in the
    switch may be reset."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        async with httpx.AsyncClient(base_url=base, timeout=2) as fresh:
            try:
                await fresh.get("/health")
            except httpx.ConnectError:
                return
            except httpx.TransportError:
                pass
        await asyncio.sleep(0.1)
    raise AssertionError("new connections were still accepted 5 s after SIGTERM")
