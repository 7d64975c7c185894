"""``python -m bench --scale [--small]``: the benchmark read against one process or two,
on the primary or on a streaming replica.

The main run's cluster and data (``bench/cluster.py``, ``bench/seed.py``), then a replica
cloned from the seeded primary (``tests/support/replication.py``). Three setups answer
the benchmark read (the 50 newest posts with their authors and tags), each server
process being ``auditql serve`` as the main run starts it, pinned to one core:

- *one process*: on the primary;
- *two processes*: that one and a second on another core, the load split evenly: two
  wrk runs at once, each with half the connections on one process. Requests/s is the
  sum of both runs'; a latency is the higher of the two runs' (the combined percentile
  is never above it). One connection cannot be split, so this setup skips c=1;
- *replica*: one process with ``AUDITQL_DATABASE_REPLICA_URLS`` naming the replica.
  The statement counts of each cluster (``pg_stat_statements`` on both) show where its
  reads went.

The setups take turns, round after round, as the main run's endpoints do. Prints a
table; asserts nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench import check, cluster, documents, load, measure
from bench.profile import Profile
from bench.progress import elapsed, note
from bench.rounds import Round, Statements
from bench.seed import seed
from bench.servers import NO_RATE_LIMITS, Endpoint, Launch, running, service
from tests.support.replication import Replication, streaming_replica

CONNECTIONS = (1, 32)
ONE, TWO, REPLICA = "one process, primary", "two processes, primary", "one process, replica"
SETUPS = (ONE, TWO, REPLICA)
CLUSTERS = ("primary", "replica")

LogProblems = Callable[[Path], Counter[str]]


@dataclass(frozen=True)
class Measured:
    round: Round
    """The setup's figures (for two processes: both wrk runs and both servers together)."""
    statements: dict[str, Statements]
    """What each cluster ran for the bench database during the round, by cluster."""


def _round(
    wrk: str,
    endpoints: Sequence[Endpoint],
    body: Path,
    *,
    label: str,
    connections: int,
    seconds: int,
    core: int,
) -> Round:
    """``connections`` split evenly over ``endpoints``, one wrk run each, all at once."""

    def run(endpoint: Endpoint) -> load.Load:
        share = connections // len(endpoints)
        return load.run(wrk, endpoint.url, body, connections=share, seconds=seconds, core=core)

    before = [measure.sample(e.process.pid) for e in endpoints]
    with ThreadPoolExecutor(len(endpoints)) as pool:
        loads = list(pool.map(run, endpoints))
    for endpoint in endpoints:
        measure.wait_idle(endpoint.process.pid)
    after = [measure.sample(e.process.pid) for e in endpoints]
    together = load.Load(
        requests=sum(r.requests for r in loads),
        seconds=max(r.seconds for r in loads),
        p50_ms=max(r.p50_ms for r in loads),
        p99_ms=max(r.p99_ms for r in loads),
        failed=sum(r.failed for r in loads),
    )
    cpu = sum(a.cpu_seconds - b.cpu_seconds for a, b in zip(after, before, strict=True))
    return Round(label, together, connections, cpu, sum(a.rss_mb for a in after))


async def _measure(
    wrk: str,
    setups: dict[str, tuple[Endpoint, ...]],
    counters: dict[str, measure.StatementCounter],
    body: Path,
    profile: Profile,
    core: int,
) -> dict[int, dict[str, list[Measured]]]:
    """By concurrency, then by setup: the measured rounds, the setups taking turns."""
    found: dict[int, dict[str, list[Measured]]] = {}
    for connections in CONNECTIONS:
        here = {name: e for name, e in setups.items() if connections >= len(e)}
        found[connections] = {name: [] for name in here}
        if profile.warmup_seconds:
            note(f"read, c={connections}: warming up")
            for name, endpoints in here.items():
                _round(wrk, endpoints, body, label=f"{name}-warmup", connections=connections,
                       seconds=profile.warmup_seconds, core=core)  # fmt: skip
        for number in range(profile.rounds):
            note(f"read, c={connections}: round {number + 1} of {profile.rounds}")
            for name, endpoints in here.items():
                for counter in counters.values():
                    await counter.reset()
                measured = _round(wrk, endpoints, body, label=f"{name}-r{number}",
                                  connections=connections, seconds=profile.seconds,
                                  core=core)  # fmt: skip
                # Per request answered (at least one, so that a round without answers
                # still shows what it cost).
                answered = max(measured.load.requests, 1)
                statements = {
                    cluster_name: Statements(answered, await counter.counts())
                    for cluster_name, counter in counters.items()
                }
                found[connections][name].append(Measured(measured, statements))
    return found


@dataclass(frozen=True)
class Cores:
    first: int
    """The one process's, the first of two's and the replica setup's process's."""
    second: int
    load: int
    """wrk's."""


def _cores() -> Cores:
    """The second server takes a core of its own when there are three, else wrk's."""
    first, wrk = load.cores()
    spare = [core for core in sorted(os.sched_getaffinity(0)) if core not in (first, wrk)]
    return Cores(first, spare[0] if spare else wrk, wrk)


@contextlib.asynccontextmanager
async def _counters(
    replication: Replication,
) -> AsyncIterator[dict[str, measure.StatementCounter]]:
    """A statement counter of the bench database on each cluster, by cluster."""
    clusters = dict(zip(CLUSTERS, (replication.primary, replication.replica), strict=True))
    async with contextlib.AsyncExitStack() as stack:
        counters = {}
        for name, pg in clusters.items():
            connection = await asyncpg.connect(cluster.dsn(pg, "postgres"))
            stack.push_async_callback(connection.close)
            counters[name] = measure.StatementCounter(connection, cluster.DATABASE)
        yield counters


def _launches(replication: Replication, work: Path, cores: Cores) -> tuple[Launch, ...]:
    url = replication.primary.url(cluster.DATABASE)
    on_replica = {
        **NO_RATE_LIMITS,
        "AUDITQL_DATABASE_REPLICA_URLS": replication.replica.url(cluster.DATABASE),
    }
    return (
        service(url, work / "first.log", cores.first),
        service(url, work / "second.log", cores.second),
        service(url, work / "replica.log", cores.first, settings=on_replica),
    )


@dataclass(frozen=True)
class Scaling:
    profile: Profile
    command: str
    started: datetime
    load_average: float
    postgres_version: str
    counts: dict[str, int]
    cores: Cores
    setup_seconds: float
    """Cluster, migrations, seeding and the replica's clone."""
    wall_seconds: float
    found: dict[int, dict[str, list[Measured]]]
    problems: dict[str, Counter[str]]
    """The services' log lines at WARNING or above, by log (first, second, replica)."""


async def run(profile: Profile, command: str, log_problems: LogProblems) -> Scaling:
    started, load_average = datetime.now(UTC), os.getloadavg()[0]
    wrk, cores = load.ensure_wrk(), _cores()
    with tempfile.TemporaryDirectory(prefix="auditql-scale-") as temporary:
        work = Path(temporary)
        note("creating the PostgreSQL cluster")
        async with cluster.throwaway_cluster() as primary:
            note(f"seeding {profile.posts:,} posts")
            seeded = await seed(primary.url(cluster.DATABASE), cluster.dsn(primary), profile)
            note("cloning a streaming replica")
            with streaming_replica(primary) as replication:
                setup_seconds = elapsed()
                launches = _launches(replication, work, cores)
                note("starting three services")
                async with _counters(replication) as counters:
                    with running(*launches) as (first, second, on_replica):
                        check.same_read(first, second)
                        check.same_read(first, on_replica)
                        body = work / "read.json"
                        body.write_bytes(documents.read_body())
                        setups = {ONE: (first,), TWO: (first, second), REPLICA: (on_replica,)}
                        found = await _measure(wrk, setups, counters, body, profile, cores.load)
                version = primary.psql("SHOW server_version").strip()
        problems = {launch.log.stem: log_problems(launch.log) for launch in launches}
    return Scaling(
        profile=profile, command=command, started=started, load_average=load_average,
        postgres_version=version, counts=seeded.counts, cores=cores,
        setup_seconds=setup_seconds, wall_seconds=elapsed(), found=found, problems=problems,
    )  # fmt: skip


Combine = Callable[[Sequence[Measured], Callable[[Measured], float]], float]
"""How a row makes one figure of a setup's rounds; NaN (shown as "-") for no rounds."""


def _median(measured: Sequence[Measured], of: Callable[[Measured], float]) -> float:
    return statistics.median(of(m) for m in measured) if measured else math.nan


def _sum(measured: Sequence[Measured], of: Callable[[Measured], float]) -> float:
    return sum(of(m) for m in measured) if measured else math.nan


def _statements_on(name: str) -> Callable[[Measured], float]:
    return lambda measured: measured.statements[name].per_request


def _rows(connections: int, by_setup: dict[str, list[Measured]]) -> list[str]:
    """The figures at one concurrency, a column per setup ("-" for one not measured)."""

    def row(
        title: str, of: Callable[[Measured], float], shape: str, over: Combine = _median
    ) -> str:
        cells = (over(by_setup.get(setup, []), of) for setup in SETUPS)
        shown = ("-" if math.isnan(cell) else format(cell, shape) for cell in cells)
        return f"| c={connections}: {title} | " + " | ".join(shown) + " |"

    one = _median(by_setup[ONE], lambda m: m.round.load.per_second)
    return [
        row("requests/s", lambda m: m.round.load.per_second, ",.0f"),
        row("requests/s / one process's", lambda m: m.round.load.per_second / one, ".2f"),
        row("p50 latency, ms", lambda m: m.round.load.p50_ms, ".2f"),
        row("p99 latency, ms", lambda m: m.round.load.p99_ms, ".2f"),
        row("server CPU per request, ms", lambda m: m.round.cpu_ms_per_request, ".2f"),
        *(
            row(f"SQL statements per request on the {name}", _statements_on(name), ".2f")
            for name in CLUSTERS
        ),
        row("failed responses, all rounds", lambda m: m.round.load.failed, ".0f", _sum),
    ]


def _table(found: dict[int, dict[str, list[Measured]]]) -> list[str]:
    lines = ["| read | " + " | ".join(SETUPS) + " |", "|---|" + "---:|" * len(SETUPS)]
    for connections, by_setup in found.items():
        lines += _rows(connections, by_setup)
    return lines


def _logs(problems: dict[str, Counter[str]]) -> list[str]:
    lines = []
    for log, found in problems.items():
        if not found:
            lines.append(f"- {log}: nothing logged at WARNING or above")
            continue
        lines.append(f"- {log}: {found.total()} lines at WARNING or above, the most common:")
        lines += [f"  - {count} x {message[:300]}" for message, count in found.most_common(5)]
    return lines


def render(scaling: Scaling) -> str:
    profile, cores = scaling.profile, scaling.cores
    counts = ", ".join(f"{n:,} {table}" for table, n in scaling.counts.items())
    rounds = f"{profile.rounds} round{'s' * (profile.rounds != 1)}"
    warmup = f"a {profile.warmup_seconds} s warm-up" if profile.warmup_seconds else "no warm-up"
    shared = " (shared with wrk)" if cores.second == cores.load else ""
    header = [
        f"# auditql scaling benchmark ({profile.name})",
        "",
        f"- command: `{scaling.command}`",
        f"- date: {scaling.started:%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores; "
        f"PostgreSQL {scaling.postgres_version}; load average when the run started: "
        f"{scaling.load_average:.2f}",
        f"- data (seed {profile.seed}): {counts}",
        f"- read query: `{documents.NEWEST_POSTS}` (anonymous); the three services "
        "answered it with equal JSON",
        f"- servers: the one process, the first of two and the replica setup's process on "
        f"core {cores.first}; the second of two on core {cores.second}{shared}; wrk (`-t1` "
        f"per run) on core {cores.load}; the primary and the replica unpinned on the same "
        "machine",
        "- two processes: two wrk runs at once, each with half the connections on one "
        "process; requests/s is their sum, a latency the higher of the two runs' (never "
        "below the combined percentile), CPU both processes'; not measured at c=1 (one "
        "connection cannot be split)",
        "- replica setup: `AUDITQL_DATABASE_REPLICA_URLS` names the replica; the statement "
        "rows (pg_stat_statements on each cluster) show where its reads went",
        f"- {rounds} of {profile.seconds} s per setup and concurrency, the setups taking "
        f"turns, after {warmup}; each figure is the median over the rounds",
        f"- wall time {scaling.wall_seconds:.0f} s, of which cluster, seeding and the "
        f"replica's clone {scaling.setup_seconds:.0f} s",
    ]
    return "\n".join(
        [*header, "", *_table(scaling.found), "", "Service logs:", "",
         *_logs(scaling.problems), ""]
    )  # fmt: skip
