"""Start-up time: from spawning a server's process until its ``/health`` answers 200.

Each server is started as the measured runs start it (``bench.servers``: the service is
``auditql serve``, pinned to its core), on a machine otherwise idle: before any load and
with the other servers stopped. The servers take turns, run after run, and each run is
a cold process (the operating system's file cache is warm after the first, as on a
host that restarts a service). ``/health`` is polled every few milliseconds over a raw
socket, so the poller costs next to nothing beside the starting process.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Sequence

from bench.servers import Launch
from tests.support.server import ROOT

_POLL_SECONDS = 0.005
_TIMEOUT_SECONDS = 60
_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def _healthy(port: int) -> bool:
    """Whether ``/health`` answers 200 now (False while nothing listens)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as sock:
        sock.sendall(_REQUEST)
        return sock.recv(64).startswith(b"HTTP/1.1 200")
    return False


def once(launch: Launch) -> float:
    """Seconds from spawning ``launch`` until it is healthy; the process is stopped after."""
    with launch.log.open("w") as output:
        started = time.perf_counter()
        process = subprocess.Popen(launch.command, env=launch.env, cwd=ROOT,
                                   stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        while not _healthy(launch.port):
            if process.poll() is not None:
                raise RuntimeError(f"{launch.name} exited: {launch.log.read_text()}")
            if time.perf_counter() - started > _TIMEOUT_SECONDS:
                raise TimeoutError(f"{launch.name} did not start: {launch.log.read_text()}")
            time.sleep(_POLL_SECONDS)
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(launches: Sequence[Launch], runs: int) -> dict[str, list[float]]:
    """``runs`` start-ups of each launch, taking turns; seconds by launch name."""
    found: dict[str, list[float]] = {launch.name: [] for launch in launches}
    for _ in range(runs):
        for launch in launches:
            found[launch.name].append(once(launch))
    return found
