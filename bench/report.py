"""The table: absolute figures and ratios, with what a reader needs to trust them."""

from __future__ import annotations

import os
import platform
import subprocess
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

from bench import documents
from bench.bulk import Bulk
from bench.profile import Profile
from bench.rounds import Round, Statements, median

SERVICE, REFERENCE = "service", "reference"
_ROOT = Path(__file__).resolve().parents[1]
_STATEMENT_WIDTH = 110


@dataclass(frozen=True)
class Results:
    profile: Profile
    command: str
    started: datetime
    setup_seconds: float
    """Cluster, migrations and seeding."""
    wall_seconds: float
    postgres_version: str
    counts: dict[str, int]
    """Rows seeded per table."""
    byte_identical: bool
    read: dict[int, dict[str, list[Round]]]
    """Rounds by concurrency, then by endpoint."""
    write: dict[str, list[Round]]
    write_connections: int
    unwritten: dict[str, int]
    """Answered createPost requests that created no post, by endpoint."""
    statements: dict[str, dict[str, Statements]]
    """Statement probes by scenario ("read", "createPost"), then by endpoint."""
    peak_rss_mb: dict[str, float]
    bulk: Bulk
    service_log_problems: Counter[str]
    """Lines the service logged at WARNING or above, by level, logger and message."""
    cores: tuple[int, int]
    """The servers' core and wrk's."""
    load_average: float
    """The machine's 1-minute load average when the run started: anything above 0 is
    other work competing for the same cores."""


def _git() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=_ROOT, capture_output=True, text=True).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = git("status", "--porcelain").strip()
    return f"{commit} (with uncommitted changes)" if dirty else commit


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def _row(label: str, service: float | None, reference: float | None) -> str:
    ratio = f"{service / reference:.3f}" if service is not None and reference else "-"
    return f"| {label} | {_number(service)} | {_number(reference)} | {ratio} |"


def _figures(label: str, rounds: dict[str, list[Round]]) -> list[str]:
    def both(title: str, figure: Callable[[Round], float], answered: bool = False) -> str:
        def of(endpoint: str) -> float | None:
            # Latencies exist only for rounds in which some request was answered.
            kept = [r for r in rounds[endpoint] if r.load.requests or not answered]
            return median(kept, figure) if kept else None

        return _row(f"{label}: {title}", of(SERVICE), of(REFERENCE))

    return [
        both("requests/s", lambda r: r.load.per_second),
        both("p50 latency, ms", lambda r: r.load.p50_ms, answered=True),
        both("p99 latency, ms", lambda r: r.load.p99_ms, answered=True),
        both("server CPU per request, ms", lambda r: r.cpu_ms_per_request),
    ]


def _statements(results: Results) -> list[str]:
    lines = []
    for scenario, by_endpoint in results.statements.items():
        for endpoint, probe in by_endpoint.items():
            lines += [
                "",
                f"{scenario}, {endpoint} ({probe.per_request:g} per request, "
                f"{probe.requests} requests one at a time):",
                "",
            ]
            for text, calls in probe.counts.most_common():
                shown = text if len(text) <= _STATEMENT_WIDTH else text[:_STATEMENT_WIDTH] + "…"
                lines.append(f"- {calls / probe.requests:g} x `{shown}`")
    return lines


def _log(problems: Counter[str]) -> list[str]:
    if not problems:
        return ["The service logged nothing at WARNING or above."]
    lines = [f"The service logged {problems.total()} lines at WARNING or above:", ""]
    for message, count in problems.most_common(10):
        lines.append(f"- {count} x {message[:300]}")
    return lines


def _memory(results: Results) -> list[str]:
    def trace(rounds: Sequence[Round]) -> str:
        return ", ".join(f"{r.rss_mb:.0f}" for r in rounds)

    lines = []
    for endpoint in (SERVICE, REFERENCE):
        parts = [f"read c={c}: {trace(rounds[endpoint])}" for c, rounds in results.read.items()]
        parts.append(f"createPost: {trace(results.write[endpoint])}")
        lines.append(f"- {endpoint}: " + "; ".join(parts))
    return lines


def _header(results: Results) -> list[str]:
    profile = results.profile
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("strawberry-graphql", "sqlalchemy", "asyncpg", "uvicorn")
    )
    counts = ", ".join(f"{count:,} {table}" for table, count in results.counts.items())
    server_core, load_core = results.cores
    rounds = f"{profile.rounds} round{'s' * (profile.rounds != 1)}"
    identical = " (byte for byte)" if results.byte_identical else " (parsed; the bytes differ)"
    return [
        f"# auditql benchmark ({profile.name})",
        "",
        f"- command: `{results.command}`",
        f"- date: {results.started:%Y-%m-%d %H:%M} UTC; commit {_git()}",
        f"- machine: {os.cpu_count()} x {_cpu_model()}; Python {platform.python_version()}; "
        f"PostgreSQL {results.postgres_version}; {versions}",
        f"- data (seed {profile.seed}): {counts}",
        f"- load average when the run started: {results.load_average:.2f} (other processes "
        "on the machine compete with the servers and PostgreSQL)",
        f"- each server is one process pinned to core {server_core}; wrk (`-t1`) is pinned to "
        f"core {load_core}; PostgreSQL runs unpinned on the same machine and shares both cores",
        f"- {rounds} of {profile.seconds} s per scenario and endpoint, the endpoints taking "
        "turns (service, reference, service, ...), after "
        + (f"a {profile.warmup_seconds} s warm-up" if profile.warmup_seconds else "no warm-up")
        + "; each figure is the median over the rounds",
        f"- read query: `{documents.NEWEST_POSTS}` (anonymous)",
        f"- both endpoints returned equal JSON for it{identical}",
        f"- wall time {results.wall_seconds:.0f} s, of which cluster, migrations and seeding "
        f"{results.setup_seconds:.0f} s",
    ]


def _table(results: Results) -> list[str]:
    bulk, reads, writes = results.bulk, results.statements["read"], results.statements["createPost"]
    failed = {
        endpoint: sum(
            r.load.failed
            for rounds in (*results.read.values(), results.write)
            for r in rounds[endpoint]
        )
        for endpoint in (SERVICE, REFERENCE)
    }
    table = [
        "| scenario | service | reference | ratio (service/reference) |",
        "|---|---:|---:|---:|",
    ]
    for connections, rounds in results.read.items():
        table += _figures(f"read, c={connections}", rounds)
    table += [
        _row("read: SQL statements per request", reads[SERVICE].per_request,
             reads[REFERENCE].per_request),
        *_figures(f"createPost, c={results.write_connections}", results.write),
        _row("createPost: SQL statements per request", writes[SERVICE].per_request,
             writes[REFERENCE].per_request),
        _row("peak RSS over the run, MB", results.peak_rss_mb[SERVICE],
             results.peak_rss_mb[REFERENCE]),
        _row(f"bulk insert of {bulk.rows:,} posts, s (add_many with audit / COPY)",
             bulk.add_many_median, bulk.copy_median),
        _row("failed responses (non-2xx, socket errors), all rounds", failed[SERVICE],
             failed[REFERENCE]),
        _row("createPost answers that created no post, all rounds",
             results.unwritten[SERVICE], results.unwritten[REFERENCE]),
    ]  # fmt: skip
    return table


def render(results: Results) -> str:
    bulk = results.bulk
    return "\n".join(
        [
            *_header(results),
            "",
            *_table(results),
            "",
            f"Bulk runs, s: add_many {', '.join(f'{s:.3f}' for s in bulk.add_many)}; "
            f"COPY {', '.join(f'{s:.3f}' for s in bulk.copy)}.",
            *_log(results.service_log_problems),
            "",
            "Resident memory after each round, MB:",
            "",
            *_memory(results),
            "",
            "## SQL statements per request (pg_stat_statements)",
            "",
            "Without the audit sequencer's passes, which run in the service's background "
            "whoever is being measured (their cost is in the service's CPU and throughput).",
            *_statements(results),
            "",
        ]
    )
