"""Retention on both databases: old entries exported with their chain, pruned only once
exported, and the trail still verifying across the cut; the export verifying on its
own; on PostgreSQL, monthly partitions that keep the append-only guard.

The trail: an installation upgraded with entries from October and November 2026 in its
log (chained first, in the order they were created), and new entries written now.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner, Result

from gql.cli.main import cli
from gql.settings import Settings
from persistence.audit import AuditContext
from persistence.engine import Database, writing
from persistence.integrity import checkpointer_of, trusted_keys_of
from persistence.models import AuditLog
from persistence.retention import RetentionError, export, make_partitions, prune, verify_export
from persistence.unit_of_work import UnitOfWork
from persistence.verification import UnverifiedTrailError
from persistence.write_guard import auditing
from tests.factories.tag import create_tag
from tests.support.audit_chain import as_owner, sequence, upgraded_with_entries, verified

OLD = [datetime(2026, 10, day, tzinfo=UTC) for day in (3, 17)] + [
    datetime(2026, 11, day, tzinfo=UTC) for day in (2, 20, 29)
]
CUT = date(2026, 12, 1)


@dataclass
class Trail:
    database: Database
    settings: Settings
    url: str
    backend: str

    async def count(self) -> int:
        async with self.database.engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(AuditLog)) or 0)


@pytest.fixture
async def trail(
    request: pytest.FixtureRequest, backend: str, database_url: str
) -> AsyncIterator[Trail]:
    url = database_url.replace("auditql_e2e", "auditql_aged")  # a new, empty one
    if backend == "postgresql":
        request.getfixturevalue("postgres_cluster").psql(
            f'CREATE DATABASE "{make_url(url).database}"'
        )
    settings = Settings(database_url=url, audit_sequencer=False)
    database = Database.from_settings(settings)
    await upgraded_with_entries(database, OLD)
    for _ in range(3):
        async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
            await create_tag(uow)
    await sequence(settings)
    yield Trail(database, settings, url, backend)
    await database.dispose()


async def _export(trail: Trail, path: Path, before: date = CUT) -> object:
    async with writing(trail.database.engine).begin() as connection:
        return await export(
            connection, checkpointer_of(trail.settings), trusted_keys_of(trail.settings),
            before, path,
        )  # fmt: skip


async def _prune(trail: Trail, path: Path, before: date = CUT) -> object:
    async with writing(trail.database.engine).begin() as connection:
        return await prune(connection, trusted_keys_of(trail.settings), before, path)


async def test_export_prune_and_verify_across_the_cut(trail: Trail, tmp_path: Path) -> None:
    path = tmp_path / "2026-11.jsonl.gz"
    exported = await _export(trail, path)
    assert (exported.entries, exported.first, exported.through) == (5, 1, 5)  # type: ignore[attr-defined]
    alone = verify_export(path, trusted_keys_of(trail.settings))
    assert alone.ok, alone.problems
    assert (alone.checked, alone.through, alone.last_checkpoint) == (5, 5, 5)
    with gzip.open(path) as file:
        lines = [json.loads(line) for line in file]
    assert [line["entry"]["created_at"][:7] for line in lines if "entry" in line] == [
        "2026-10", "2026-10", "2026-11", "2026-11", "2026-11",
    ]  # fmt: skip

    pruned = await _prune(trail, path)
    assert pruned.entries == 5  # type: ignore[attr-defined]
    if trail.backend == "postgresql":
        assert pruned.partitions == ["audit_log_y2026m10", "audit_log_y2026m11"]  # type: ignore[attr-defined]
    assert await trail.count() == 3

    report = await verified(trail.database, trail.settings)
    assert report.ok, report.problems
    assert (report.anchor, report.checked) == (5, 3)
    await _more_entries(trail)
    assert (await verified(trail.database, trail.settings)).ok


async def _more_entries(trail: Trail) -> None:
    async with UnitOfWork(trail.database, AuditContext(actor_id=None)) as uow:
        await create_tag(uow)
    await sequence(trail.settings)


async def test_a_second_export_starts_where_the_first_ended(trail: Trail, tmp_path: Path) -> None:
    await _export(trail, tmp_path / "october.jsonl.gz", date(2026, 11, 1))
    second = await _export(trail, tmp_path / "november.jsonl.gz")
    assert (second.first, second.through, second.entries) == (3, 5, 3)  # type: ignore[attr-defined]
    alone = verify_export(tmp_path / "november.jsonl.gz", trusted_keys_of(trail.settings))
    assert alone.ok, alone.problems
    assert alone.anchor == 2  # from the first export's signed cut
    with pytest.raises(RetentionError, match="no entries created before 2026-12-01 are left"):
        await _export(trail, tmp_path / "again.jsonl.gz")


async def test_prune_takes_only_the_recorded_export(trail: Trail, tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl.gz"
    with pytest.raises(RetentionError, match="not the recorded export"):
        path.write_bytes(gzip.compress(b"{}\n"))
        await _prune(trail, path)
    path.unlink()
    await _export(trail, path)
    with pytest.raises(RetentionError, match="not the recorded export"):
        await _prune(trail, path, date(2026, 11, 1))  # another date than exported
    edited = tmp_path / "edited.jsonl.gz"
    edited.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()) + b"\n"))
    with pytest.raises(RetentionError, match="not the recorded export"):
        await _prune(trail, edited)
    assert await trail.count() == 8  # nothing was removed


async def test_an_edited_export_names_the_entry(trail: Trail, tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl.gz"
    await _export(trail, path)
    with gzip.open(path) as file:
        lines = [json.loads(line) for line in file]
    entries = [line for line in lines if "entry" in line]
    entries[2]["entry"]["action"] = "delete"
    path.write_bytes(gzip.compress(b"".join(json.dumps(line).encode() + b"\n" for line in lines)))
    report = verify_export(path, trusted_keys_of(trail.settings))
    assert (report.problems[0].kind, report.problems[0].position) == ("edited", 3)


async def test_export_refuses_a_trail_that_does_not_verify(trail: Trail, tmp_path: Path) -> None:
    stored = UUID(int=2).hex if trail.backend == "sqlite" else UUID(int=2)  # as each keeps it
    await as_owner(trail.url, f"UPDATE audit_log SET action = 'delete' WHERE id = '{stored}'")
    with pytest.raises(UnverifiedTrailError, match=r"does not verify \(edited at position 2"):
        await _export(trail, tmp_path / "export.jsonl.gz")
    assert not (tmp_path / "export.jsonl.gz").exists()


async def test_export_refuses_a_month_that_is_not_over(trail: Trail, tmp_path: Path) -> None:
    with pytest.raises(RetentionError, match="first day of a month"):
        await _export(trail, tmp_path / "x.gz", date(2026, 11, 15))
    with pytest.raises(RetentionError, match="in the future"):
        await _export(trail, tmp_path / "x.gz", date(2999, 1, 1))


async def test_the_cli_exports_verifies_and_prunes(
    trail: Trail, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITQL_DATABASE_URL", trail.url)
    path = tmp_path / "2026-11.jsonl.gz"

    async def invoke(*args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, cli, list(args))

    exported = await invoke("audit", "export", "--before", "2026-12-01", "--output", str(path))
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.startswith(f"exported 5 entries (positions 1 to 5) to {path}, sha256 ")
    alone = await invoke("audit", "verify", "--export", str(path))
    assert alone.exit_code == 0, alone.output
    pruned = await invoke("audit", "prune", "--before", "2026-12-01", "--export", str(path))
    assert pruned.exit_code == 0, pruned.output
    assert pruned.stdout.startswith("pruned 5 entries through position 5")
    after = await invoke("audit", "verify")
    assert after.exit_code == 0, after.output
    assert after.stdout.startswith("checked positions 6 to 8 (3 entries) after the checkpoint at 5")


# -- PostgreSQL's partitions ------------------------------------------------------------------

postgresql_only = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@postgresql_only
async def test_every_partition_refuses_changes_like_the_log(trail: Trail) -> None:
    async with trail.database.engine.connect() as connection:
        partitions = (
            (
                await connection.execute(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                        " WHERE i.inhparent = 'audit_log'::regclass ORDER BY 1"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert "audit_log_default" in partitions
    assert "audit_log_y2026m10" in partitions
    async with trail.database.engine.connect() as connection:
        holding = set(
            (
                await connection.execute(
                    text("SELECT DISTINCT tableoid::regclass::text FROM audit_log")
                )
            )
            .scalars()
            .all()
        )
    assert {"audit_log_y2026m10", "audit_log_y2026m11"} <= holding
    for partition in partitions:  # row triggers fire on rows: on the partitions that have some
        changes = ("UPDATE {} SET action = 'x'", "DELETE FROM {}") if partition in holding else ()
        for statement in (*changes, "TRUNCATE {}"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with trail.database.engine.begin() as connection:
                    with auditing():  # past the application's guard: the database's remains
                        await connection.execute(text(statement.format(partition)))


@postgresql_only
async def test_partitions_are_made_ahead_and_strays_move_into_theirs(trail: Trail) -> None:
    stray = datetime(2027, 9, 14, tzinfo=UTC)  # past the months made ahead: the default
    await as_owner(
        trail.url,
        "INSERT INTO audit_log (id, created_at, action, entity_type, entity_id, changes)"
        f" VALUES ('{UUID(int=99)}', '{stray.isoformat()}', 'create', 'tags', 'x', '{{}}')",
    )
    async with trail.database.engine.begin() as connection:
        made = await make_partitions(connection, date(2027, 8, 5))
        again = await make_partitions(connection, date(2027, 8, 5))
        home = await connection.scalar(
            text("SELECT tableoid::regclass::text FROM audit_log WHERE id = :id"),
            {"id": UUID(int=99)},
        )
    assert made == [
        "audit_log_y2027m08", "audit_log_y2027m09", "audit_log_y2027m10", "audit_log_y2027m11",
    ]  # fmt: skip
    assert again == []
    assert home == "audit_log_y2027m09"
