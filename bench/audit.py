"""``python -m bench --audit N``: the audit chain over N entries on PostgreSQL.

COPYs N entries shaped like ``createPost``'s into a throwaway cluster (one transaction,
as after a bulk load), then times, in this process pinned to one core:

- the sequencer giving all N their positions (one pass: the backlog case, e.g. after the
  sequencer was stopped for a long while);
- ``verify`` over the whole trail, in interleaved runs; the figure is the median.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson
from pydantic import SecretStr

from bench.cluster import DATABASE, dsn, throwaway_cluster
from bench.progress import note
from persistence import canonical
from persistence.base import utcnow
from persistence.checkpoints import signing_key, verifying_keys
from persistence.engine import create_engine
from persistence.ids import uuid7
from persistence.integrity import LONG_STATEMENT_MS, sequencer_of
from persistence.settings import DatabaseSettings
from persistence.verification import verify

RUNS = 3
_KEY_SETTING = "ed25519:bench:" + "A" * 43 + "="
_KEY = signing_key(_KEY_SETTING)


@dataclass(frozen=True)
class AuditFigures:
    entries: int
    sequence_s: float
    verify_s: list[float]
    problems: int

    def render(self, command: str) -> str:
        verify_s = statistics.median(self.verify_s)
        runs = ", ".join(f"{s:.2f}" for s in self.verify_s)
        return "\n".join(
            [
                "# auditql benchmark: the audit chain",
                "",
                f"- command: `{command}`",
                f"- {self.entries:,} audit entries (createPost's shape), COPYed in one "
                "transaction; PostgreSQL and this process share the machine, this process "
                "pinned to core 0",
                "",
                "| step | seconds | entries/s |",
                "|---|---:|---:|",
                f"| sequence (one pass: positions, hashes, chain rows) | {self.sequence_s:.2f} "
                f"| {self.entries / self.sequence_s:,.0f} |",
                f"| verify the whole trail (median of {RUNS}) | {verify_s:.2f} "
                f"| {self.entries / verify_s:,.0f} |",
                "",
                f"Verify runs, s: {runs}. Problems found: {self.problems}.",
                "",
            ]
        )


async def run(entries: int) -> AuditFigures:
    os.sched_setaffinity(0, {0})
    async with throwaway_cluster() as cluster:
        note(f"copying {entries:,} audit entries")
        await _seed(dsn(cluster), entries)
        settings = DatabaseSettings(
            database_url=cluster.url(DATABASE), audit_signing_key=SecretStr(_KEY_SETTING)
        )
        async with sequencer_of(settings) as sequencer:
            started = time.perf_counter()
            sequenced = await sequencer.sequence()
            sequence_s = time.perf_counter() - started
        note(f"sequenced {sequenced:,} in {sequence_s:.1f} s")
        engine = create_engine(
            settings.model_copy(update={"db_statement_timeout_ms": LONG_STATEMENT_MS})
        )
        keys = verifying_keys([], _KEY)
        runs, problems = [], 0
        for _ in range(RUNS):
            started = time.perf_counter()
            async with engine.connect() as connection:
                report = await verify(connection, keys)
            runs.append(time.perf_counter() - started)
            problems = len(report.problems)
            note(f"verified {report.checked:,} in {runs[-1]:.1f} s")
        await engine.dispose()
    return AuditFigures(entries, sequence_s, runs, problems)


async def _seed(url: str, entries: int) -> None:
    connection = await asyncpg.connect(url)
    now = utcnow()
    try:
        await connection.copy_records_to_table(
            "audit_log",
            records=(_entry(n, now) for n in range(entries)),
            columns=list(canonical.COLUMNS),
        )
    finally:
        await connection.close()


def _entry(n: int, at: datetime) -> tuple[object, ...]:
    """``canonical.COLUMNS`` of an entry like createPost's."""
    changes = {
        "title": [None, f"Post {n}"],
        "slug": [None, f"post-{n}"],
        "body": [None, "A post written in bulk."],
        "status": [None, "draft"],
    }
    return (
        uuid7(), at, 1, "create", "posts", str(uuid7()), orjson.dumps(changes).decode(),
        f"req-{n}", None, None,
    )  # fmt: skip
