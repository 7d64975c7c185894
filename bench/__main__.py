"""``python -m bench [--small] [--output FILE]``: the whole benchmark, one command.

Makes a throwaway PostgreSQL cluster, seeds it, starts the service and the reference,
checks that they answer alike (exit 1 if not), measures both, prints the table and
writes it to a file. With ``--scale``: reads against one process or two, on the primary
or a replica (``bench/scale.py``), printed (written only with ``--output``). With
``--audit N``: the audit chain's sequencing and verification over N entries
(``bench/audit.py``), printed likewise. With ``--live``: subscriptions' delivery latency
with and without 1,000 idle subscribers, and their memory (``bench/live.py``), printed and
written to bench/results/live.md and live.json (with ``--small``: 20 idle subscribers and
3 writes, printed only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson

from bench import audit, bulk, check, cluster, documents, live, load, measure, rounds, scale
from bench.live_report import render as render_live
from bench.live_report import to_json as live_json
from bench.profile import FULL, SMALL, Profile
from bench.progress import elapsed, note
from bench.report import Results, render
from bench.seed import seed
from bench.servers import Endpoint, reference, running, service
from bench.subscribers import LiveError

RESULTS = Path(__file__).with_name("results")
READ_CONNECTIONS = (1, 32)
WRITE_CONNECTIONS = 16
_PROBE_REQUESTS = 5


def _log_problems(log: Path) -> Counter[str]:
    """The service's log lines at WARNING or above, counted by level, logger and message."""
    found: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            found[f"(not JSON) {line[:200]}"] += 1
            continue
        if record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            # The exception's own line (the last of the traceback) says what went wrong.
            cause = (record.get("exc_info") or "").strip().rpartition("\n")[2]
            message = f"{record['level']} {record.get('logger')}: {record.get('message')}"
            found[" ".join(f"{message} {cause}".split())] += 1
    return found


async def _probes(
    counter: measure.StatementCounter, endpoints: Sequence[Endpoint], authorization: str
) -> dict[str, dict[str, rounds.Statements]]:
    reads = [documents.read_body()] * _PROBE_REQUESTS
    found: dict[str, dict[str, rounds.Statements]] = {"read": {}, "createPost": {}}
    for endpoint in endpoints:
        writes = [
            documents.create_post_body(f"Probe {endpoint.name} {n}") for n in range(_PROBE_REQUESTS)
        ]
        found["read"][endpoint.name] = await rounds.probe(counter, endpoint, reads)
        found["createPost"][endpoint.name] = await rounds.probe(
            counter, endpoint, writes, authorization
        )
    return found


@dataclass(frozen=True)
class _Measured:
    """What the servers showed under load (the fields of ``Results`` of that name)."""

    byte_identical: bool
    read: dict[int, dict[str, list[rounds.Round]]]
    write: dict[str, list[rounds.Round]]
    unwritten: dict[str, int]
    statements: dict[str, dict[str, rounds.Statements]]
    peak_rss_mb: dict[str, float]


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
    ours, theirs = endpoints
    byte_identical = check.same_read(ours, theirs)
    check.same_create(ours, theirs, authorization)
    read_body = work / "read.json"
    read_body.write_bytes(documents.read_body())

    def write_body(label: str) -> Path:
        path = work / f"{label}.json"
        path.write_bytes(documents.create_post_body(documents.load_title(label)))
        return path

    read = {
        connections: rounds.interleaved(
            wrk, endpoints, lambda _label: read_body, scenario="read",
            connections=connections, profile=profile, core=load_core,
        )
        for connections in READ_CONNECTIONS
    }  # fmt: skip
    write = rounds.interleaved(
        wrk, endpoints, write_body, scenario="createPost", connections=WRITE_CONNECTIONS,
        profile=profile, core=load_core, authorization=authorization,
    )  # fmt: skip
    note("counting statements")
    return _Measured(
        byte_identical=byte_identical,
        read=read,
        write=write,
        unwritten={name: await check.unwritten(data, found) for name, found in write.items()},
        statements=await _probes(counter, endpoints, authorization),
        peak_rss_mb={e.name: measure.sample(e.process.pid).peak_rss_mb for e in endpoints},
    )


async def run(profile: Profile, command: str) -> Results:
    started, load_average = datetime.now(UTC), os.getloadavg()[0]
    wrk, (server_core, load_core) = load.ensure_wrk(), load.cores()
    with tempfile.TemporaryDirectory(prefix="auditql-bench-") as temporary:
        work = Path(temporary)
        note("creating the PostgreSQL cluster")
        async with cluster.throwaway_cluster() as pg, contextlib.AsyncExitStack() as stack:
            database_url, dsn = pg.url(cluster.DATABASE), cluster.dsn(pg)
            note(f"seeding {profile.posts:,} posts")
            seeded = await seed(database_url, dsn, profile)
            setup_seconds = elapsed()
            data = await asyncpg.connect(dsn)
            stack.push_async_callback(data.close)
            stats = await asyncpg.connect(cluster.dsn(pg, "postgres"))
            stack.push_async_callback(stats.close)
            counter = measure.StatementCounter(stats, cluster.DATABASE)
            note("starting the service and the reference")
            with running(
                service(database_url, work / "service.log", server_core),
                reference(dsn, seeded.writer_id, work / "reference.log", server_core),
            ) as endpoints:
                measured = await _measure(
                    endpoints, profile, work, wrk, load_core, data, counter, seeded.token
                )
            note(f"bulk: {profile.bulk_runs} x {profile.bulk_rows:,} posts each way")
            result = await bulk.compare(
                database_url, dsn, seeded.writer_id, profile.bulk_rows, profile.bulk_runs,
                server_core,
            )  # fmt: skip
            postgres_version = await stats.fetchval("SHOW server_version")
        problems = _log_problems(work / "service.log")
    return Results(
        profile=profile, command=command, started=started, setup_seconds=setup_seconds,
        wall_seconds=elapsed(), postgres_version=postgres_version, counts=seeded.counts,
        byte_identical=measured.byte_identical, read=measured.read, write=measured.write,
        write_connections=WRITE_CONNECTIONS, unwritten=measured.unwritten,
        statements=measured.statements, peak_rss_mb=measured.peak_rss_mb, bulk=result,
        service_log_problems=problems, cores=(server_core, load_core),
        load_average=load_average,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--small", action="store_true", help="small data and short rounds (CI: under a minute)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the table (default: bench/results/latest.md, or "
        "bench/results/small.md with --small; with --scale: printed only)",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="reads against one process or two, on the primary or a replica",
    )
    parser.add_argument(
        "--audit",
        type=int,
        metavar="N",
        help="sequence and verify an audit trail of N entries (printed only, like --scale)",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="subscriptions' delivery latency with and without 1,000 idle subscribers, and "
        "their memory (written to bench/results/live.md and live.json; with --small: 20 "
        "idle subscribers, printed only)",
    )
    args = parser.parse_args(argv)
    profile = SMALL if args.small else FULL
    output = args.output or RESULTS / ("small.md" if args.small else "latest.md")
    if args.live:
        return _live(profile, args.output, command=_command())
    command = _command()
    try:
        if args.audit:
            text = asyncio.run(audit.run(args.audit)).render(command)
        elif args.scale:
            text = scale.render(asyncio.run(scale.run(profile, command, _log_problems)))
        else:
            text = render(asyncio.run(run(profile, command)))
    except check.MismatchError as mismatch:
        print(f"bench: the endpoints disagree, nothing measured: {mismatch}", file=sys.stderr)
        return 1
    print(text)
    if (args.scale or args.audit) and args.output is None:
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    note(f"written to {output}")
    return 0


def _command() -> str:
    return shlex.join(["uv", "run", "python", "-m", "bench", *sys.argv[1:]])


def _live(profile: Profile, output: Path | None, *, command: str) -> int:
    plan = live.SMALL if profile is SMALL else live.FULL
    try:
        results = asyncio.run(live.run(profile, plan, command, _log_problems))
    except LiveError as failure:
        print(f"bench: live updates misbehaved, nothing measured: {failure}", file=sys.stderr)
        return 1
    text = render_live(results)
    print(text)
    if output is None and profile is SMALL:
        return 0
    output = output or RESULTS / "live.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    output.with_suffix(".json").write_bytes(live_json(results))
    note(f"written to {output} and {output.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
