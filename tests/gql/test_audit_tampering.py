"""Tampering with the audit trail as PostgreSQL's owner, triggers disabled: each way of
changing it is detected and located, and an untouched trail verifies.

The trail: twelve entries at positions 1 to 12, a signed checkpoint at 10 (the
sequencer's first pass signs one), and 11 and 12 written after it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from gql.settings import Settings
from persistence import canonical
from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.chain import Head, links
from persistence.checkpoints import exported, imported
from persistence.engine import Database
from persistence.ids import uuid7
from persistence.models.audit_chain import AuditChainLink, AuditCheckpoint
from persistence.unit_of_work import UnitOfWork
from persistence.verification import Report
from tests.factories.tag import create_tag
from tests.support.audit_chain import as_owner, sequence, verified

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@dataclass
class Trail:
    database: Database
    settings: Settings
    url: str
    ids: dict[int, UUID]
    """Entry ids by position."""

    async def report(self, **options: object) -> Report:
        return await verified(self.database, self.settings, **options)  # type: ignore[arg-type]

    async def tamper(self, *statements: str) -> None:
        await as_owner(self.url, *statements)

    def found(self, report: Report) -> list[tuple[str, int | None]]:
        return [(problem.kind, problem.position) for problem in report.problems]


async def _write(database: Database, count: int) -> None:
    for _ in range(count):
        async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
            await create_tag(uow)


@pytest.fixture
async def trail(database_url: str) -> AsyncIterator[Trail]:
    settings = Settings(database_url=database_url, audit_sequencer=False)
    database = Database.from_settings(settings)
    await _write(database, 10)
    await sequence(settings)  # positions 1-10, and the first checkpoint, at 10
    await _write(database, 2)
    await sequence(settings)  # 11 and 12: no checkpoint due
    async with database.engine.connect() as connection:
        rows = await connection.execute(select(AuditChainLink.position, AuditChainLink.entry_id))
        ids = {position: entry_id for position, entry_id in rows}
    yield Trail(database, settings, database_url, ids)
    await database.dispose()


async def test_an_untouched_trail_verifies(trail: Trail) -> None:
    report = await trail.report()
    assert report.ok, report.problems
    assert (report.checked, report.last_checkpoint, report.unattested) == (12, 10, 2)


async def test_an_edited_entry_is_named(trail: Trail) -> None:
    await trail.tamper(
        'UPDATE audit_log SET changes = \'{"name": [null, "forged"]}\''
        f" WHERE id = '{trail.ids[4]}'"
    )
    report = await trail.report()
    assert trail.found(report)[0] == ("edited", 4)
    assert str(trail.ids[4]) in report.problems[0].detail


@pytest.mark.parametrize("with_its_link", [False, True], ids=["entry", "entry-and-link"])
async def test_a_deleted_entry_is_named(trail: Trail, with_its_link: bool) -> None:
    statements = [f"DELETE FROM audit_log WHERE id = '{trail.ids[4]}'"]
    if with_its_link:
        statements.append("DELETE FROM audit_chain WHERE position = 4")
    await trail.tamper(*statements)
    assert trail.found(await trail.report())[0] == ("deleted", 4)


async def test_an_entry_inserted_with_an_old_date_is_named_when_sequenced(trail: Trail) -> None:
    backdated = utcnow() - timedelta(days=1)  # dated among older entries
    forged = uuid7()
    await trail.tamper(
        "INSERT INTO audit_log (id, created_at, action, entity_type, entity_id, changes)"
        f" VALUES ('{forged}', '{backdated.isoformat()}', 'create', 'tags', 'x', '{{}}')"
    )
    await sequence(trail.settings)  # committed now: the sequencer takes it, at 13
    report = await trail.report()
    assert trail.found(report) == [("inserted", 13)]
    assert "backdated" in report.problems[0].detail


async def test_an_entry_inserted_behind_the_sequencers_back_is_named(trail: Trail) -> None:
    forged = uuid7()
    await trail.tamper(
        "INSERT INTO audit_log (id, created_at, action, entity_type, entity_id, changes, xid)"
        f" VALUES ('{forged}', now(), 'create', 'tags', 'x', '{{}}', 1)"
    )
    await sequence(trail.settings)
    report = await trail.report()
    assert [(p.kind, p.position, p.entry_id) for p in report.problems] == [
        ("inserted", None, forged)
    ]


async def _insert_into_the_chain_at(trail: Trail, position: int, *, relink: bool) -> None:
    """A forged entry at ``position``, later links moved up one; with ``relink``, every
    hash after it recomputed, as an owner who knows the canonical form would."""
    forged = uuid7()
    await trail.tamper(
        f"UPDATE audit_chain SET position = position + 1000 WHERE position >= {position}",
        f"UPDATE audit_chain SET position = position - 999 WHERE position >= {position + 1000}",
        "INSERT INTO audit_log (id, created_at, action, entity_type, entity_id, changes, xid)"
        f" VALUES ('{forged}', now(), 'create', 'tags', 'x', '{{}}', 1)",
        "INSERT INTO audit_chain (position, entry_id, entry_created_at, committed_at,"
        f" entry_hash, chain_hash, created_at) SELECT {position}, id, created_at, created_at,"
        " '\\x00'::bytea, '\\x00'::bytea, now() FROM audit_log"
        f" WHERE id = '{forged}'",
    )
    # Its own hash right, as an owner who knows the canonical form would make it; with
    # ``relink`` every link after it recomputed too.
    await _relink(trail, position, chain=relink)


async def _relink(trail: Trail, position: int, *, chain: bool) -> None:
    url = make_url(trail.url).set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(url)
    try:
        before = await connection.fetchrow(
            "SELECT position, chain_hash FROM audit_chain WHERE position = $1", position - 1
        )
        assert before is not None
        rows = await connection.fetch(
            f"SELECT c.committed_at, {', '.join('l.' + c for c in canonical.COLUMNS)}"
            " FROM audit_chain c JOIN audit_log l ON l.id = c.entry_id"
            " WHERE c.position >= $1 ORDER BY c.position",
            position,
        )
        entries = [
            {**dict(row), "changes": json.loads(row["changes"])} for row in rows
        ]  # as SQLAlchemy's JSONB type reads them
        relinked = list(links(Head(before["position"], before["chain_hash"]), entries))
        if not chain:  # the forged entry's own hash only; its link left wrong
            relinked = relinked[:1]
            relinked[0]["chain_hash"] = bytes(32)
        statements = [
            f"UPDATE audit_chain SET entry_hash = '\\x{link['entry_hash'].hex()}',"
            f" chain_hash = '\\x{link['chain_hash'].hex()}' WHERE position = {link['position']}"
            for link in relinked
        ]
    finally:
        await connection.close()
    await trail.tamper(*statements)


async def test_an_entry_inserted_into_the_chain_is_named(trail: Trail) -> None:
    await _insert_into_the_chain_at(trail, 5, relink=False)
    assert trail.found(await trail.report())[0] == ("chain_altered", 5)


async def test_a_consistent_rewrite_is_caught_by_the_signed_checkpoint(trail: Trail) -> None:
    """Both tables rewritten consistently: only a signature the owner cannot make
    shows it, at the checkpoint the rewrite reaches."""
    await _insert_into_the_chain_at(trail, 5, relink=True)
    assert trail.found(await trail.report()) == [("rewritten", 10)]


async def test_two_swapped_entries_are_named_as_reordered(trail: Trail) -> None:
    await trail.tamper(
        f"UPDATE audit_chain SET entry_id = '{uuid7()}' WHERE position = 3",
        f"UPDATE audit_chain SET entry_id = '{trail.ids[3]}' WHERE position = 6",
        f"UPDATE audit_chain SET entry_id = '{trail.ids[6]}' WHERE position = 3",
    )
    report = await trail.report()
    assert trail.found(report)[0] == ("reordered", 3)
    assert "position 6" in report.problems[0].detail


async def test_a_dropped_tail_is_named_against_the_checkpoint(trail: Trail) -> None:
    ids = ", ".join(f"'{trail.ids[p]}'" for p in range(9, 13))
    await trail.tamper(
        f"DELETE FROM audit_log WHERE id IN ({ids})", "DELETE FROM audit_chain WHERE position >= 9"
    )
    assert trail.found(await trail.report()) == [("truncated", 9)]


async def test_a_dropped_tail_and_checkpoints_are_named_against_a_kept_copy(trail: Trail) -> None:
    async with trail.database.engine.connect() as connection:
        rows = await connection.execute(
            select(AuditCheckpoint.statement, AuditCheckpoint.signature)
        )
        kept = [imported(exported(row)) for row in rows]  # as the log has them
    ids = ", ".join(f"'{trail.ids[p]}'" for p in range(9, 13))
    await trail.tamper(
        f"DELETE FROM audit_log WHERE id IN ({ids})",
        "DELETE FROM audit_chain WHERE position >= 9",
        "DELETE FROM audit_checkpoint",
    )
    assert (await trail.report()).ok  # nothing in the database tells
    report = await trail.report(external=[k for k in kept if k])
    assert trail.found(report) == [("truncated", 9)]


async def test_entries_dropped_after_the_last_checkpoint_are_only_unattested(
    trail: Trail,
) -> None:
    """The limit, stated: removing what no checkpoint covers yet cannot be told from
    never having written it. `auditql audit checkpoint` narrows that window."""
    ids = ", ".join(f"'{trail.ids[p]}'" for p in (11, 12))
    await trail.tamper(
        f"DELETE FROM audit_log WHERE id IN ({ids})", "DELETE FROM audit_chain WHERE position > 10"
    )
    report = await trail.report()
    assert report.ok
    assert (report.through, report.unattested) == (10, 0)


async def test_a_forged_checkpoint_is_named(trail: Trail) -> None:
    await trail.tamper(
        "INSERT INTO audit_checkpoint (id, created_at, position, chain_hash, kind, key_id,"
        f" statement, signature) SELECT '{uuid7()}', now(), 12, chain_hash, 'demand', 'test',"
        " convert_to(replace(convert_from(statement, 'UTF8'), '\"position\":10',"
        " '\"position\":12'), 'UTF8'), signature FROM audit_checkpoint"
    )
    report = await trail.report()
    assert trail.found(report) == [("forged_checkpoint", 12)]
    assert "bad signature" in report.problems[0].detail
