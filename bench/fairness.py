"""``python -m bench.fairness``: does one client's flood of refused requests slow another?

The service (production mode, one process, pinned to one core) serves a *probe*: a
client with a token of its own asking the benchmark's read (the 50 newest posts with
their authors and tags) one request at a time, about 20 a second, from the other core.
Meanwhile an anonymous *flood* (wrk, 50 connections, on the probe's core) sends either
depth bombs (refused at validation, no SQL) or 500 KB documents (refused before
parsing), as fast as they are answered. The probe's latency is measured idle and under
each flood, with the rate limits off and at their defaults. Prints a table; asserts
nothing (the target: under a flood, the probe's median within 2x of idle).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from bench import cluster, documents, load
from bench.profile import SMALL
from bench.progress import note
from bench.seed import seed
from bench.servers import NO_RATE_LIMITS, running, service

FLOOD_CONNECTIONS = 50
_PROBE_INTERVAL = 0.05


def _bomb() -> bytes:
    """A document nested far deeper than the depth limit."""
    inner = "id"
    for _ in range(30):
        inner = f"createdBy {{ posts(first: 1) {{ edges {{ node {{ {inner} }} }} }} }}"
    return orjson.dumps({"query": f"{{ posts(first: 1) {{ edges {{ node {{ {inner} }} }} }} }}"})


def _oversized() -> bytes:
    """500 KB of tokens."""
    return orjson.dumps({"query": "{ " + "a " * 250_000 + "}"})


@dataclass(frozen=True)
class Probe:
    latencies_ms: list[float]
    statuses: dict[int, int]

    @property
    def median(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=10)[-1]


async def probe(url: str, token: str, seconds: float) -> Probe:
    """One request at a time, each ``_PROBE_INTERVAL`` after the previous answer."""
    latencies, statuses = [], dict[int, int]()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = documents.read_body()
    async with httpx.AsyncClient(timeout=30) as http:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await http.post(url, content=body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            await asyncio.sleep(_PROBE_INTERVAL)
    return Probe(latencies, statuses)


async def scenario(
    url: str, token: str, wrk: str, core: int, flood: Path | None, seconds: float
) -> tuple[Probe, float]:
    """The probe's figures, and the flood's requests per second (0 without one)."""
    if flood is None:
        return await probe(url, token, seconds), 0.0
    command = [
        "taskset", "-c", str(core), wrk, "-t1", f"-c{FLOOD_CONNECTIONS}",
        f"-d{int(seconds) + 2}s", "--timeout", "10s", "-s", str(load.SCRIPT), url, "--",
        str(flood),
    ]  # fmt: skip
    wrk_process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
    await asyncio.sleep(1)  # the flood at full strength first
    measured = await probe(url, token, seconds)
    output = (await wrk_process.communicate())[0].decode()
    line = next(line for line in output.splitlines() if line.startswith("BENCH-RESULT "))
    figures = orjson.loads(line.removeprefix("BENCH-RESULT "))
    return measured, figures["requests"] / (figures["duration_us"] / 1e6)


async def run(seconds: float) -> str:
    wrk, (server_core, load_core) = load.ensure_wrk(), load.cores()
    rows = []
    with tempfile.TemporaryDirectory(prefix="auditql-fairness-") as temporary:
        work = Path(temporary)
        floods = {"idle": None, "depth bombs": work / "bomb.json",
                  "500 KB documents": work / "oversized.json"}  # fmt: skip
        (work / "bomb.json").write_bytes(_bomb())
        (work / "oversized.json").write_bytes(_oversized())
        async with cluster.throwaway_cluster() as pg:
            note("seeding")
            seeded = await seed(pg.url(cluster.DATABASE), cluster.dsn(pg), SMALL)
            for limits, settings in (("off", NO_RATE_LIMITS), ("defaults", {})):
                launch = service(pg.url(cluster.DATABASE), work / f"service-{limits}.log",
                                 server_core, settings=settings)  # fmt: skip
                with running(launch) as (endpoint,):
                    # The probe shares the flood's core; PostgreSQL, started before, may
                    # run on either.
                    os.sched_setaffinity(0, {load_core})
                    await probe(endpoint.url, seeded.token, 2)  # warm up
                    idle = None
                    for name, flood in floods.items():
                        note(f"rate limits {limits}: {name}")
                        measured, rate = await scenario(
                            endpoint.url, seeded.token, wrk, load_core, flood, seconds
                        )
                        idle = idle or measured.median
                        rows.append((limits, name, measured, rate, measured.median / idle))
    load_average = os.getloadavg()[0]
    lines = [
        f"Probe: one request at a time every {_PROBE_INTERVAL * 1000:.0f} ms for {seconds:g} s "
        f"beside a flood of {FLOOD_CONNECTIONS} connections; server on core {server_core}, "
        f"probe and flood on core {load_core}; load average {load_average:.2f} at the end.",
        "",
        "| rate limits | flood | probe p50, ms | probe p90, ms | p50 / idle | probe "
        "answers | flood, requests/s |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for limits, name, measured, rate, ratio in rows:
        answers = ", ".join(f"{n} x {status}" for status, n in sorted(measured.statuses.items()))
        lines.append(
            f"| {limits} | {name} | {measured.median:.2f} | {measured.p90:.2f} | {ratio:.2f} "
            f"| {answers} | {rate:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10, help="length of each scenario")
    args = parser.parse_args(argv)
    print(asyncio.run(run(args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
