"""The figures of ``python -m bench --live`` (``bench/live.py``) and their table."""

from __future__ import annotations

import dataclasses
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson

from bench.profile import Profile
from bench.subscribers import CONNECTING
from gql.settings import Settings

LAG = "auditql_live_delivery_lag_seconds"
SEQUENCE_INTERVAL_MS = Settings.model_fields["audit_sequence_interval_ms"].default


@dataclass(frozen=True)
class Plan:
    idle: int
    """Idle subscribers in the second setup."""
    rate: float
    """Writes per second."""
    writes: int
    """Writes measured per setup."""
    warmup: int
    """Writes before the first setup, not measured."""
    rounds: int
    """Rounds of both setups, taking turns; a figure pools the events of all rounds."""
    rest_seconds: float
    """How long the server's CPU is sampled at rest before each setup's writes."""


@dataclass(frozen=True)
class Setup:
    """One round of one setup, or (:meth:`pooled`) all of a setup's rounds."""

    idle: int
    writes: int
    commit_ms: list[float]
    """Per event, in write order: from its commit to its arrival at the watcher."""
    response_ms: list[float]
    """From the mutation's response to the event's arrival."""
    request_ms: list[float]
    """The mutation's own time, sent to answered."""
    lag_seconds: float
    lag_count: int
    lag_within_100ms: int
    """The server's histogram of commit to send, over the writes: its sum, its count and
    its count at or below 100 ms (a bucket boundary)."""
    dropped: int
    cpu_seconds: float
    """The server's CPU over the writes, which took ``seconds``."""
    seconds: float
    rest_cpu_seconds: float
    """The server's CPU over ``rest_seconds`` without writes, before them."""
    rest_seconds: float
    rss_mb: float
    """After the writes (pooled: the highest)."""

    @property
    def server_lag_ms(self) -> float:
        return self.lag_seconds / self.lag_count * 1000

    @property
    def server_within_100ms_percent(self) -> float:
        return self.lag_within_100ms / self.lag_count * 100

    @property
    def rest_cpu_percent(self) -> float:
        return self.rest_cpu_seconds / self.rest_seconds * 100

    @property
    def cpu_percent(self) -> float:
        return self.cpu_seconds / self.seconds * 100

    @staticmethod
    def pooled(rounds: Sequence[Setup]) -> Setup:
        def total(name: str) -> Any:
            return sum((getattr(r, name) for r in rounds[1:]), start=getattr(rounds[0], name))

        fields = {f.name: total(f.name) for f in dataclasses.fields(Setup)}
        return Setup(**{**fields, "idle": rounds[0].idle, "rss_mb": max(r.rss_mb for r in rounds)})


@dataclass(frozen=True)
class Memory:
    start_mb: float
    before_mb: float
    """Before the idle subscribers first connected (after the warm-up and the first
    writes)."""
    with_idle_mb: float
    after_mb: float
    """At the end, the last of them gone."""
    idle: int

    @property
    def per_idle_kb(self) -> float:
        return (self.with_idle_mb - self.before_mb) * 1024 / self.idle


@dataclass(frozen=True)
class LiveResults:
    profile: Profile
    plan: Plan
    command: str
    started: datetime
    load_average: float
    postgres_version: str
    counts: dict[str, int]
    cores: tuple[int, int]
    """The server's and this process's."""
    setup_seconds: float
    wall_seconds: float
    connect_seconds: float
    """The idle subscribers' connecting and subscribing, all of them."""
    setups: list[Setup]
    """Each round of each setup, in the order they ran."""
    memory: Memory
    problems: Counter[str] = field(default_factory=Counter)


def _percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: a value that was measured, never one between two."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _rows(setups: Sequence[Setup]) -> list[str]:
    def row(title: str, of: Callable[[Setup], float], shape: str = ".1f") -> str:
        return f"| {title} | " + " | ".join(format(of(s), shape) for s in setups) + " |"

    def spread(title: str, of: Callable[[Setup], list[float]]) -> list[str]:
        return [
            row(f"{title}, p50 ms", lambda s: _percentile(of(s), 50)),
            row(f"{title}, p99 ms", lambda s: _percentile(of(s), 99)),
            row(f"{title}, max ms", lambda s: max(of(s))),
        ]

    return [
        "| | " + " | ".join(f"{s.idle:,} idle subscribers" for s in setups) + " |",
        "|---|" + "---:|" * len(setups),
        row("events received, each once (= comments written)", lambda s: s.writes, ",.0f"),
        *spread("commit → client", lambda s: s.commit_ms),
        *spread("mutation response → client", lambda s: s.response_ms),
        row("createComment request, p50 ms", lambda s: _percentile(s.request_ms, 50)),
        row("server: commit → send, mean ms (histogram)", lambda s: s.server_lag_ms),
        row("server: sent within 100 ms, %", lambda s: s.server_within_100ms_percent, ".0f"),
        row("events dropped (overflowed subscribers)", lambda s: s.dropped, ",.0f"),
        row("server CPU at rest (no writes), % of one core", lambda s: s.rest_cpu_percent),
        row("server CPU during the writes, % of one core", lambda s: s.cpu_percent),
        row("server RSS after the writes (highest), MB", lambda s: s.rss_mb),
    ]


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"


def render(results: LiveResults) -> str:
    plan, memory, profile = results.plan, results.memory, results.profile
    server_core, load_core = results.cores
    counts = ", ".join(f"{n:,} {table}" for table, n in results.counts.items())
    problems = results.problems
    logged = (
        ["- service log: nothing at WARNING or above"] if not problems else
        [f"- service log: {problems.total()} lines at WARNING or above, the most common:",
         *(f"  - {count} x {message[:300]}" for message, count in problems.most_common(5))]
    )  # fmt: skip
    return "\n".join([
        f"# auditql benchmark: live updates ({profile.name})",
        "",
        f"- command: `{results.command}`",
        f"- date: {results.started:%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores; PostgreSQL "
        f"{results.postgres_version}; load average when the run started: "
        f"{results.load_average:.2f}",
        f"- data (seed {profile.seed}): {counts}",
        f"- one service process (`auditql serve`, production settings, rate limits off) on "
        f"core {server_core}; this process (every subscriber and the writer) on core "
        f"{load_core}; PostgreSQL unpinned on the same machine",
        f"- audit sequencer interval: {SEQUENCE_INTERVAL_MS} ms (the default): an event is "
        f"sent once a sequencer pass has given its entry a position, so waiting for the next "
        f"pass (0-{SEQUENCE_INTERVAL_MS} ms) is most of the latency",
        f"- idle subscribers: {plan.idle:,} WebSocket connections, each with its own token "
        "(the seeded users', in turn) and one subscription on a post of its own that "
        "nothing writes to (`commentAdded` on half, `nodeChanged` on the other half); "
        f"connecting and subscribing them all took {results.connect_seconds:.1f} s, "
        f"{CONNECTING} at a time",
        f"- writes: `createComment` over HTTP on one watched post, {plan.rate:g}/s, one at a "
        f"time, {plan.writes:,} per setup and round, after "
        f"{_count(plan.warmup, 'warm-up write')}; "
        "one more subscriber watches the post (`commentAdded`); the setups took turns in "
        f"{_count(plan.rounds, 'round')} (0 idle, {plan.idle:,} idle, ...), "
        "each figure over the events of all rounds",
        "- commit → client: from `audit_chain.committed_at` (PostgreSQL's commit timestamp) "
        "to the event's arrival; mutation response → client: from the HTTP response (the "
        "commit is just before it); nearest-rank percentiles; server figures from "
        f"`/metrics` (`{LAG}`)",
        f"- wall time {results.wall_seconds:.0f} s, of which cluster, seeding and tokens "
        f"{results.setup_seconds:.0f} s",
        "",
        *_rows([Setup.pooled([s for s in results.setups if s.idle == idle])
                for idle in (0, plan.idle)]),
        "",
        f"Memory (server RSS, VmRSS, each once the server was quiet): {memory.start_mb:.1f} "
        f"MB at start, {memory.before_mb:.1f} MB before the idle subscribers first connected "
        f"(after the warm-up and the first writes), {memory.with_idle_mb:.1f} MB with "
        f"{memory.idle:,} of them: **{memory.per_idle_kb:.0f} KB per idle subscriber** "
        f"(connection and subscription); {memory.after_mb:.1f} MB at the end, the last of "
        "them gone.",
        "",
        *logged,
        "",
    ])  # fmt: skip


def to_json(results: LiveResults) -> bytes:
    """Everything measured, each latency included, for a closer look than the table's."""
    raw = asdict(results)
    raw["memory"]["per_idle_kb"] = results.memory.per_idle_kb
    raw["sequence_interval_ms"] = SEQUENCE_INTERVAL_MS
    raw["problems"] = dict(results.problems)
    return orjson.dumps(raw, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
