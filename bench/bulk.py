"""Bulk insert: the repository's ``add_many`` (stamped, one audit entry per row, in a
unit of work) against asyncpg's COPY of the same rows (no audit entries).

Both run in this process, pinned to the servers' core, one after the other in
interleaved runs; a small warm-up run of each comes first, so statement compilation
and type introspection are not timed.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import asyncpg

from bench.servers import in_process
from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.engine import Database
from persistence.ids import uuid7
from persistence.models import Post
from persistence.repositories.post import PostRepository
from persistence.unit_of_work import UnitOfWork

_COLUMNS = (
    "id", "title", "slug", "body", "status", "published_at", "created_at", "updated_at",
    "created_by_id", "updated_by_id", "version", "deleted_at", "deleted_by_id",
)  # fmt: skip
_BODY = "A post written in bulk."
_WARMUP_ROWS = 100


@dataclass(frozen=True)
class Bulk:
    rows: int
    add_many: list[float]
    """Seconds per run."""
    copy: list[float]

    @property
    def add_many_median(self) -> float:
        return statistics.median(self.add_many)

    @property
    def copy_median(self) -> float:
        return statistics.median(self.copy)


def _titles(label: str, count: int) -> list[tuple[str, str]]:
    return [(f"Bulk {label} {n}", f"bulk-{label}-{n}") for n in range(count)]


async def _add_many(database: Database, actor_id: int, label: str, count: int) -> float:
    """Seconds for ``count`` posts through ``PostRepository.add_many``, commit included."""
    start = time.perf_counter()
    async with UnitOfWork(database, AuditContext(actor_id=actor_id)) as uow:
        await PostRepository(uow.session).add_many(
            [Post(title=title, slug=slug, body=_BODY) for title, slug in _titles(label, count)]
        )
    return time.perf_counter() - start


async def _copy(connection: asyncpg.Connection, actor_id: int, label: str, count: int) -> float:
    """Seconds for the same rows through ``copy_records_to_table`` (one COPY)."""
    start = time.perf_counter()
    now = utcnow()
    records = [
        (uuid7(), title, slug, _BODY, "draft", None, now, now, actor_id, actor_id, 1, None, None)
        for title, slug in _titles(label, count)
    ]
    await connection.copy_records_to_table("posts", records=records, columns=_COLUMNS)
    return time.perf_counter() - start


async def _audit_entries(connection: asyncpg.Connection) -> int:
    count: int = await connection.fetchval("SELECT count(*) FROM audit_log")
    return count


async def compare(
    database_url: str, dsn: str, actor_id: int, rows: int, runs: int, core: int
) -> Bulk:
    """``runs`` interleaved runs of each; fails if ``add_many`` skipped an audit entry."""
    database = Database.from_settings(in_process(database_url))
    connection = await asyncpg.connect(dsn)
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        await _add_many(database, actor_id, "warmup-orm", _WARMUP_ROWS)
        await _copy(connection, actor_id, "warmup-copy", _WARMUP_ROWS)
        result = Bulk(rows, [], [])
        for run in range(runs):
            before = await _audit_entries(connection)
            result.add_many.append(await _add_many(database, actor_id, f"orm-{run}", rows))
            if (written := await _audit_entries(connection) - before) != rows:
                raise RuntimeError(f"add_many of {rows} posts wrote {written} audit entries")
            result.copy.append(await _copy(connection, actor_id, f"copy-{run}", rows))
        return result
    finally:
        os.sched_setaffinity(0, affinity)
        await connection.close()
        await database.dispose()
