"""The main run: every figure of issue 17 in one run, the references in the same rounds.

A throwaway PostgreSQL cluster, seeded; the start-up time of each server on the idle
machine; then the service, the reference (the limit) and the stock strawberry server
side by side, checked to answer alike (``bench.check``; nothing is measured otherwise;
the big list just before its own rounds, so the peak memory over the others is read
without it) and measured in interleaved rounds: the read at concurrency 1 and 32 on all
three, ``createPost`` on the service and the reference, the big list on the service and
the stock server; their statements per request and peak memory; and last the bulk insert.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench import bulk, check, cluster, documents, load, measure, rounds, startup
from bench.profile import Profile
from bench.progress import elapsed, note
from bench.report import Results
from bench.seed import seed
from bench.servers import Endpoint, Launch, reference, running, service, stock

READ_CONNECTIONS = (1, 32)
WRITE_CONNECTIONS = 16
BIG_LIST_CONNECTIONS = 4
"""Enough for the server to work while one request waits for PostgreSQL, few enough
that the servers' memory shows one answer of 10,000 objects at a time, not 32."""
_PROBE_REQUESTS = 5

LogProblems = Callable[[Path], Counter[str]]


async def _probes(
    counter: measure.StatementCounter, scenarios: Sequence[_Planned], authorization: str
) -> dict[str, dict[str, rounds.Statements]]:
    """The statements of each kind of request, on each endpoint it was measured on."""
    found: dict[str, dict[str, rounds.Statements]] = {}
    for planned in scenarios:
        by_endpoint = found.setdefault(planned.name, {})
        for endpoint in planned.endpoints:
            if endpoint.name in by_endpoint:
                continue
            labels = [f"probe-{planned.name}-{endpoint.name}-{n}" for n in range(_PROBE_REQUESTS)]
            bodies = [planned.body_for(label).read_bytes() for label in labels]
            probe = rounds.probe(counter, endpoint, bodies, planned.authorization)
            by_endpoint[endpoint.name] = await probe
    return found


@dataclass(frozen=True)
class _Planned:
    """A scenario to measure: a request, its concurrency, the endpoints that serve it."""

    name: str
    body_for: rounds.BodyFor
    endpoints: Sequence[Endpoint]
    connections: int
    authorization: str = ""


@dataclass(frozen=True)
class _Measured:
    """What the servers showed under load (the fields of ``Results`` of that name)."""

    identical: dict[str, bool]
    big_list_objects: int
    scenarios: list[rounds.Scenario]
    unwritten: dict[str, int]
    statements: dict[str, dict[str, rounds.Statements]]
    peak_rss_mb: dict[str, float]
    peak_rss_big_mb: dict[str, float]


def _plan(endpoints: Sequence[Endpoint], work: Path, authorization: str) -> list[_Planned]:
    """The scenarios of issue 17, in the order they run: the big list last, so that the
    peak memory of the others is read before it."""
    ours, limit, theirs = endpoints
    (work / "read.json").write_bytes(documents.read_body())
    (work / "big-list.json").write_bytes(documents.big_list_body())

    def fixed(name: str) -> rounds.BodyFor:
        return lambda _label: work / name

    def write_body(label: str) -> Path:
        path = work / f"{label}.json"
        path.write_bytes(documents.create_post_body(documents.load_title(label)))
        return path

    reads = [
        _Planned("read", fixed("read.json"), endpoints, connections)
        for connections in READ_CONNECTIONS
    ]
    return [
        *reads,
        _Planned("createPost", write_body, (ours, limit), WRITE_CONNECTIONS, authorization),
        _Planned("big list", fixed("big-list.json"), (ours, theirs), BIG_LIST_CONNECTIONS),
    ]


def _peak_rss(endpoints: Sequence[Endpoint]) -> dict[str, float]:
    return {e.name: measure.sample(e.process.pid).peak_rss_mb for e in endpoints}


async def _measure(
    endpoints: Sequence[Endpoint],
    profile: Profile,
    work: Path,
    wrk: str,
    load_core: int,
    data: asyncpg.Connection,
    counter: measure.StatementCounter,
    token: str,
) -> _Measured:
    authorization = f"Bearer {token}"
    ours, limit, theirs = endpoints
    identical = check.same_read(ours, limit, theirs)
    check.same_create(ours, limit, authorization)
    plan = _plan(endpoints, work, authorization)
    measured: list[rounds.Scenario] = []
    peak_rss: dict[str, float] = {}
    big_list_objects = 0
    for planned in plan:
        if planned.name == "big list":
            # The peak over the others is read before the big list's check: one answer
            # of 10,000 objects raises it by about 29 MB on the service.
            peak_rss = _peak_rss(endpoints)
            big_list_objects = check.same_big_list(ours, theirs)
        found = rounds.interleaved(
            wrk, planned.endpoints, planned.body_for, scenario=planned.name,
            connections=planned.connections, profile=profile, core=load_core,
            authorization=planned.authorization,
        )  # fmt: skip
        measured.append(rounds.Scenario(planned.name, planned.connections, found))
    note("counting statements")
    written = next(s for s in measured if s.name == "createPost")
    return _Measured(
        identical=identical,
        big_list_objects=big_list_objects,
        scenarios=measured,
        unwritten={e: await check.unwritten(data, found) for e, found in written.rounds.items()},
        statements=await _probes(counter, plan, authorization),
        peak_rss_mb=peak_rss,
        peak_rss_big_mb=_peak_rss(endpoints),
    )


async def run(profile: Profile, command: str, log_problems: LogProblems) -> Results:
    started, load_average = datetime.now(UTC), os.getloadavg()[0]
    wrk, (server_core, load_core) = load.ensure_wrk(), load.cores()
    with tempfile.TemporaryDirectory(prefix="auditql-bench-") as temporary:
        work = Path(temporary)
        note("creating the PostgreSQL cluster")
        async with (
            cluster.throwaway_cluster(core=load_core) as pg,
            contextlib.AsyncExitStack() as stack,
        ):
            database_url, dsn = pg.url(cluster.DATABASE), cluster.dsn(pg)
            note(f"seeding {profile.posts:,} posts")
            seeded = await seed(database_url, dsn, profile)
            setup_seconds = elapsed()
            data = await asyncpg.connect(dsn)
            stack.push_async_callback(data.close)
            stats = await asyncpg.connect(cluster.dsn(pg, "postgres"))
            stack.push_async_callback(stats.close)
            counter = measure.StatementCounter(stats, cluster.DATABASE)

            def launches(label: str) -> tuple[Launch, ...]:
                return (
                    service(database_url, work / f"{label}service.log", server_core),
                    reference(dsn, seeded.writer_id, work / f"{label}reference.log", server_core),
                    stock(database_url, work / f"{label}stock.log", server_core),
                )

            note(f"start-up: {profile.startup_runs} runs of each server")
            startup_seconds = startup.measure(launches("startup-"), profile.startup_runs)
            note("starting the servers")
            with running(*launches("")) as endpoints:
                measured = await _measure(
                    endpoints, profile, work, wrk, load_core, data, counter, seeded.token
                )
            note(f"bulk: {profile.bulk_runs} x {profile.bulk_rows:,} posts each way")
            result = await bulk.compare(
                database_url, dsn, seeded.writer_id, profile.bulk_rows, profile.bulk_runs,
                server_core,
            )  # fmt: skip
            postgres_version = await stats.fetchval("SHOW server_version")
        problems = log_problems(work / "service.log")
    return Results(
        profile=profile, command=command, started=started, setup_seconds=setup_seconds,
        wall_seconds=elapsed(), postgres_version=postgres_version, counts=seeded.counts,
        identical=measured.identical, big_list_objects=measured.big_list_objects,
        scenarios=measured.scenarios, unwritten=measured.unwritten,
        statements=measured.statements, peak_rss_mb=measured.peak_rss_mb,
        peak_rss_big_mb=measured.peak_rss_big_mb, startup_seconds=startup_seconds,
        bulk=result, service_log_problems=problems, cores=(server_core, load_core),
        postgres_core=load_core, load_average=load_average,
    )  # fmt: skip
