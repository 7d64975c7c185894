"""The table: absolute figures and ratios, with what a reader needs to trust them."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

from bench import documents
from bench.bulk import Bulk
from bench.profile import Profile
from bench.rounds import Round, Scenario, Statements, median

SERVICE, REFERENCE, STOCK = "service", "reference", "stock"
ENDPOINTS = (SERVICE, REFERENCE, STOCK)
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
    identical: dict[str, bool]
    """Whether each other endpoint's answer to the read was byte for byte the service's
    (they all parse to equal JSON, or nothing is measured)."""
    big_list_objects: int
    """Users and posts in the big list's answer."""
    scenarios: list[Scenario]
    unwritten: dict[str, int]
    """Answered createPost requests that created no post, by endpoint."""
    statements: dict[str, dict[str, Statements]]
    """Statement probes by scenario name, then by endpoint."""
    peak_rss_mb: dict[str, float]
    """Over the reads and writes of issue 6 (before the big list)."""
    peak_rss_big_mb: dict[str, float]
    """Over the whole run, the big list included."""
    startup_seconds: dict[str, list[float]]
    """From spawn to ``/health`` answering 200, per run, by endpoint."""
    bulk: Bulk
    service_log_problems: Counter[str]
    """Lines the service logged at WARNING or above, by level, logger and message."""
    cores: tuple[int, int]
    """The servers' core and wrk's."""
    postgres_core: int | None
    """The core PostgreSQL is pinned to, if it is."""
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


def _ratio(service: float | None, other: float | None) -> str:
    return f"{service / other:.3f}" if service is not None and other else "-"


def _row(
    label: str,
    values: Mapping[str, float | None],
    spread: Mapping[str, str] | None = None,
    *,
    ratios: bool = True,
) -> str:
    """One line: the figure of each endpoint (and its spread, if given), then the
    service's ratios to the reference and to the stock server (or none: "-")."""
    cells = [_number(values.get(e)) + (spread or {}).get(e, "") for e in ENDPOINTS]
    ours = values.get(SERVICE)
    if ratios:
        cells += [_ratio(ours, values.get(REFERENCE)), _ratio(ours, values.get(STOCK))]
    else:
        cells += ["-", "-"]
    return f"| {label} | {' | '.join(cells)} |"


def _spread(values: Sequence[float]) -> str:
    """`` (low-high)`` over the rounds, when there are several."""
    if len(values) < 2:
        return ""
    return f" ({_number(min(values))}-{_number(max(values))})"


def _figures(scenario: Scenario) -> list[str]:
    rounds = scenario.rounds

    def row(title: str, figure: Callable[[Round], float], *, answered: bool = False,
            spread: bool = False) -> str:  # fmt: skip
        def kept(endpoint: str) -> list[Round]:
            # Latencies exist only for rounds in which some request was answered.
            return [r for r in rounds.get(endpoint, []) if r.load.requests or not answered]

        values = {e: median(kept(e), figure) if kept(e) else None for e in ENDPOINTS}
        spreads = {e: _spread([figure(r) for r in kept(e)]) for e in ENDPOINTS} if spread else {}
        return _row(f"{scenario.title}: {title}", values, spreads)

    return [
        row("requests/s", lambda r: r.load.per_second, spread=True),
        row("p50 latency, ms", lambda r: r.load.p50_ms, answered=True),
        row("p99 latency, ms", lambda r: r.load.p99_ms, answered=True),
        row("server CPU per request, ms", lambda r: r.cpu_ms_per_request),
    ]


def _scaling(results: Results) -> list[str]:
    """Each endpoint's read rate at its highest concurrency over its rate at the lowest."""
    reads = sorted((s for s in results.scenarios if s.name == "read"), key=lambda s: s.connections)
    if len(reads) < 2:
        return []
    low, high = reads[0], reads[-1]

    def rate(scenario: Scenario, endpoint: str) -> float | None:
        rounds = scenario.rounds.get(endpoint)
        return median(rounds, lambda r: r.load.per_second) if rounds else None

    values: dict[str, float | None] = {}
    for endpoint in ENDPOINTS:
        slow, fast = rate(low, endpoint), rate(high, endpoint)
        values[endpoint] = fast / slow if fast is not None and slow else None
    label = f"read: requests/s at c={high.connections} over c={low.connections}"
    return [_row(label, values, ratios=False)]


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
    lines = []
    for endpoint in ENDPOINTS:
        parts = [
            f"{s.title}: " + ", ".join(f"{r.rss_mb:.0f}" for r in s.rounds[endpoint])
            for s in results.scenarios
            if endpoint in s.rounds
        ]
        lines.append(f"- {endpoint}: " + "; ".join(parts))
    return lines


def _header(results: Results) -> list[str]:
    profile = results.profile
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("strawberry-graphql", "sqlalchemy", "asyncpg", "uvicorn", "aiodataloader")
    )
    counts = ", ".join(f"{count:,} {table}" for table, count in results.counts.items())
    server_core, load_core = results.cores
    postgres = (
        "runs unpinned on the same machine and shares both cores"
        if results.postgres_core is None
        else f"is pinned to core {results.postgres_core}"
    )
    rounds = f"{profile.rounds} round{'s' * (profile.rounds != 1)}"
    same = ", ".join(
        f"{name} ({'byte for byte' if equal else 'parsed; the bytes differ'})"
        for name, equal in results.identical.items()
    )
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
        f"core {load_core}; PostgreSQL {postgres}",
        "- servers: *service* is `auditql serve`; *reference* is the limit, plain Starlette + "
        "asyncpg + orjson answering from 3 statements (`createPost`: one INSERT, no "
        "authentication, no audit entry); *stock* is strawberry + SQLAlchemy + aiodataloader "
        "as their docs show them (reads only)",
        f"- {rounds} of {profile.seconds} s per scenario and endpoint, the endpoints taking "
        "turns (service, reference, stock, service, ...), after "
        + (f"a {profile.warmup_seconds} s warm-up" if profile.warmup_seconds else "no warm-up")
        + "; each figure is the median over the rounds, requests/s with its range",
        f"- read query: `{documents.NEWEST_POSTS}` (anonymous)",
        f"- big list: `{documents.BIG_LIST}` (anonymous; {results.big_list_objects:,} objects "
        "in the answer)",
        f"- every other endpoint returned JSON equal to the service's: {same}",
        f"- start-up: {profile.startup_runs} run{'s' * (profile.startup_runs != 1)} of each "
        "server, taking turns, before any load; from spawn until `/health` answers 200",
        f"- wall time {results.wall_seconds:.0f} s, of which cluster, migrations and seeding "
        f"{results.setup_seconds:.0f} s",
    ]


def _table(results: Results) -> list[str]:
    bulk, statements = results.bulk, results.statements
    failed = {
        endpoint: sum(r.load.failed for s in results.scenarios for r in s.rounds.get(endpoint, []))
        for endpoint in ENDPOINTS
    }
    startup = results.startup_seconds
    table = [
        "| scenario | service | reference (the limit) | stock strawberry | service / reference "
        "| service / stock |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for scenario in results.scenarios:
        table += _figures(scenario)
    table += _scaling(results)
    for name, by_endpoint in statements.items():
        table.append(_row(f"{name}: SQL statements per request",
                          {e: probe.per_request for e, probe in by_endpoint.items()}))  # fmt: skip
    table += [
        _row("start-up until /health answers, s",
             {e: statistics.median(runs) for e, runs in startup.items()},
             {e: _spread(runs) for e, runs in startup.items()}),
        _row("peak RSS over reads and createPost, MB", results.peak_rss_mb),
        _row("peak RSS over the run (big list included), MB", results.peak_rss_big_mb),
        _row(f"bulk insert of {bulk.rows:,} posts, s (service: add_many with audit; "
             "reference: COPY)", {SERVICE: bulk.add_many_median, REFERENCE: bulk.copy_median},
             {SERVICE: _spread(bulk.add_many), REFERENCE: _spread(bulk.copy)}),
        _row("failed responses (non-2xx, socket errors), all rounds", failed),
        _row("createPost answers that created no post, all rounds", results.unwritten),
    ]  # fmt: skip
    return table


def render(results: Results) -> str:
    startup = "; ".join(
        f"{name} {', '.join(f'{s:.2f}' for s in runs)}"
        for name, runs in results.startup_seconds.items()
    )
    return "\n".join(
        [
            *_header(results),
            "",
            *_table(results),
            "",
            f"Start-up runs, s: {startup}.",
            f"Bulk runs, s: add_many {', '.join(f'{s:.3f}' for s in results.bulk.add_many)}; "
            f"COPY {', '.join(f'{s:.3f}' for s in results.bulk.copy)}.",
            *_log(results.service_log_problems),
            "",
            "Resident memory after each round, MB:",
            "",
            *_memory(results),
            "",
            "## SQL statements per request (pg_stat_statements)",
            "",
            "Without the audit sequencer's passes and the live updates' listener's reads and "
            "heartbeats, which run in the service's background whoever is being measured "
            "(their cost is in the service's CPU and throughput).",
            *_statements(results),
            "",
        ]
    )
