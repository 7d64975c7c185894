"""The load generator: wrk, a compiled one, on its own core, driven by bench/wrk.lua."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import orjson

SCRIPT = Path(__file__).with_name("wrk.lua")
_MARKER = "BENCH-RESULT "


@dataclass(frozen=True)
class Load:
    """What one wrk run saw."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failed: int
    """Responses other than 2xx/3xx, and socket errors and timeouts."""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def cores() -> tuple[int, int]:
    """The servers' core and the load's: two different ones when there are two."""
    available = sorted(os.sched_getaffinity(0))
    return (available[0], available[1]) if len(available) > 1 else (available[0],) * 2


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package first if it is missing (as root)."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
        ):
            subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    return found


def run(
    wrk: str,
    url: str,
    body: Path,
    *,
    connections: int,
    seconds: int,
    core: int,
    authorization: str = "",
) -> Load:
    """``connections`` keep-alive connections POSTing ``body`` for ``seconds``."""
    command = [
        "taskset", "-c", str(core), wrk, "-t1", f"-c{connections}", f"-d{seconds}s",
        "--latency", "--timeout", "10s", "-s", str(SCRIPT), url, "--", str(body), authorization,
    ]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    lines = [line for line in output.splitlines() if line.startswith(_MARKER)]
    if not lines:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    figures = orjson.loads(lines[-1].removeprefix(_MARKER))
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        failed=sum(figures[k] for k in ("connect", "read", "write", "status", "timeout")),
    )
