"""Retention: monthly partitions made ahead, old entries exported with their chain, and
only what was exported pruned, so that verification continues across the cut.

- :func:`make_partitions` (PostgreSQL, as the owner): this month's partition of the
  audit log and the next ``MONTHS_AHEAD``, each with the append-only guard; entries a
  missing month sent to the default partition move into their own.
- :func:`export`: every entry created before a month's first day, from the end of the
  previous export, written as gzipped JSON lines with the hashes that chain them and
  the checkpoints among them, ending with a signed ``cut`` checkpoint; recorded in
  ``audit_export`` with the file's SHA-256.
- :func:`prune` (as the owner): with that very file, drops the months it covers
  (PostgreSQL: whole partitions; SQLite: those rows) and their chain links, and records
  the prune; verification then starts from the cut checkpoint.
- :func:`verify_export`: an export checked on its own, anywhere.

An entry created after the cut's date can sit at a position before it, behind a
transaction that committed late: it is exported too, and stays in the database.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence import canonical
from persistence.chain import ENTRY_COLUMNS
from persistence.checkpoints import (
    Checkpoint,
    Checkpointer,
    VerifyingKey,
    exported,
    imported,
)
from persistence.errors import DomainError
from persistence.ids import uuid7
from persistence.models.audit_chain import (
    AuditChainLink,
    AuditCheckpoint,
    AuditExport,
    AuditPrune,
    AuditTrail,
)
from persistence.verification import Report, sign_verified
from persistence.write_guard import auditing

FORMAT = "auditql-audit-export/1"
MONTHS_AHEAD = 3
_LOG = ENTRY_COLUMNS[0].table
_CHAIN = cast(Table, AuditChainLink.__table__)
_CHECKPOINTS = cast(Table, AuditCheckpoint.__table__)
_EXPORTS = cast(Table, AuditExport.__table__)
_PRUNES = cast(Table, AuditPrune.__table__)


class RetentionError(DomainError):
    """An export or prune that cannot be done as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Exported:
    path: Path
    entries: int
    first: int
    through: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Pruned:
    entries: int
    through: int
    partitions: list[str]


def first_of_month(value: date) -> datetime:
    if value.day != 1:
        raise RetentionError(f"--before takes the first day of a month, not {value}")
    return datetime(value.year, value.month, 1, tzinfo=UTC)


# -- partitions (PostgreSQL) ---------------------------------------------------------------


def partition_name(month: date) -> str:
    return f"audit_log_y{month.year}m{month.month:02d}"


def _add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


async def make_partitions(connection: AsyncConnection, today: date | None = None) -> list[str]:
    """This month's and the next ``MONTHS_AHEAD`` months' partitions that are missing,
    made (and filled from the default partition); their names. Idempotent."""
    month = (today or datetime.now(UTC).date()).replace(day=1)
    made = []
    for ahead in range(MONTHS_AHEAD + 1):
        start = _add_months(month, ahead)
        name = partition_name(start)
        exists = await connection.scalar(text("SELECT to_regclass(:name)"), {"name": name})
        if exists is None:
            await _make_partition(connection, name, start, _add_months(start, 1))
            made.append(name)
    return made


async def _make_partition(connection: AsyncConnection, name: str, start: date, end: date) -> None:
    bounds = {"start": datetime.combine(start, datetime.min.time(), UTC),
              "end": datetime.combine(end, datetime.min.time(), UTC)}  # fmt: skip
    stray = await connection.scalar(
        text(
            "SELECT count(*) FROM audit_log_default WHERE created_at >= :start"
            " AND created_at < :end"
        ),
        bounds,
    )
    if stray:  # entries of this month went to the default partition: move them
        await connection.execute(text("ALTER TABLE audit_log DETACH PARTITION audit_log_default"))
    await connection.execute(
        text(
            f"CREATE TABLE {name} PARTITION OF audit_log FOR VALUES FROM"
            f" ('{start} 00:00+00') TO ('{end} 00:00+00')"
        )
    )
    await connection.execute(
        text(
            f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name}"
            " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()"
        )
    )
    if stray:
        moving = "created_at >= :start AND created_at < :end"
        with auditing():
            await connection.execute(
                text(f"INSERT INTO audit_log SELECT * FROM audit_log_default WHERE {moving}"),
                bounds,
            )
            await connection.execute(text("ALTER TABLE audit_log_default DISABLE TRIGGER USER"))
            await connection.execute(text(f"DELETE FROM audit_log_default WHERE {moving}"), bounds)
            await connection.execute(text("ALTER TABLE audit_log_default ENABLE TRIGGER USER"))
        await connection.execute(
            text("ALTER TABLE audit_log ATTACH PARTITION audit_log_default DEFAULT")
        )


# -- export ----------------------------------------------------------------------------------


async def export(
    connection: AsyncConnection,
    checkpointer: Checkpointer,
    keys: dict[str, VerifyingKey],
    before: date,
    path: Path,
) -> Exported:
    """Write the entries created before ``before`` that no export holds yet, in one
    transaction that signs the cut and records the export (see the module)."""
    cut = first_of_month(before)
    if cut > datetime.now(UTC):
        raise RetentionError(f"--before {before} is in the future: its month is not over")
    previous = await connection.scalar(select(func.max(_EXPORTS.c.through_position))) or 0
    pending = await connection.scalar(
        select(func.count())
        .select_from(_LOG)
        .where(_LOG.c.created_at < cut)
        .where(~select(_CHAIN.c.entry_id).where(_CHAIN.c.entry_id == _LOG.c.id).exists())
    )
    if pending:
        raise RetentionError(
            f"{pending} entries created before {before} await their position; run it again "
            "in a second (or start the sequencer: auditql audit sequencer)"
        )
    through = await connection.scalar(
        select(func.max(_CHAIN.c.position)).where(_CHAIN.c.entry_created_at < cut)
    )
    if through is None or through <= previous:
        raise RetentionError(f"no entries created before {before} are left to export")
    signed = await sign_verified(
        connection, checkpointer, keys, first=previous + 1, last=through, kind="cut"
    )
    anchor = await _anchor(connection, previous)
    trail = str(await connection.scalar(select(AuditTrail.id)))
    header = {
        "format": FORMAT, "trail": trail, "canonical": canonical.VERSION,
        "before": before.isoformat(), "anchor": anchor,
        "through": through,
    }  # fmt: skip
    checkpoints = await connection.execute(
        select(_CHECKPOINTS.c.statement, _CHECKPOINTS.c.signature)
        .where(_CHECKPOINTS.c.position > previous)
        .where(_CHECKPOINTS.c.position < through)
        .order_by(_CHECKPOINTS.c.position)
    )
    kept = [exported(row) for row in checkpoints]
    rows = await connection.stream(
        select(
            _CHAIN.c.position,
            _CHAIN.c.committed_at,
            _CHAIN.c.entry_hash,
            _CHAIN.c.chain_hash,
            *ENTRY_COLUMNS,
        )
        .join(_LOG, _LOG.c.id == _CHAIN.c.entry_id)
        .where(_CHAIN.c.position > previous, _CHAIN.c.position <= through)
        .order_by(_CHAIN.c.position)
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    count = 0
    with _gzip_writer(temporary) as out:
        _write(out, header)
        for checkpoint in kept:  # before the entries: a reader checks them as it goes
            _write(out, {"checkpoint": checkpoint})
        async for row in rows:
            _write(out, {
                "position": row.position,
                "committed_at": canonical.timestamp(row.committed_at),
                "entry_hash": bytes(row.entry_hash).hex(),
                "chain_hash": bytes(row.chain_hash).hex(),
                "entry": canonical.content(row._mapping),
            })  # fmt: skip
            count += 1
        _write(out, {"cut": exported(signed), "entries": count})
    digest = hashlib.sha256(temporary.read_bytes()).hexdigest()
    with auditing():
        await connection.execute(
            _EXPORTS.insert(),
            [{"id": uuid7(), "created_at": datetime.now(UTC), "before": cut,
              "through_position": through, "entries": count, "checkpoint_id": signed["id"],
              "sha256": bytes.fromhex(digest)}],
        )  # fmt: skip
    temporary.replace(path)
    return Exported(path, count, previous + 1, through, digest)


async def _anchor(connection: AsyncConnection, position: int) -> dict[str, Any]:
    """Where an export starts: the genesis, or the previous export's signed cut."""
    if position == 0:
        trail = (await connection.execute(select(AuditTrail.id))).scalar_one()
        return {"position": 0, "chain_hash": canonical.genesis(trail).hex()}
    found = (
        await connection.execute(
            select(_CHECKPOINTS.c.chain_hash, _CHECKPOINTS.c.statement, _CHECKPOINTS.c.signature)
            .where(_CHECKPOINTS.c.position == position, _CHECKPOINTS.c.kind == "cut")
            .limit(1)
        )
    ).first()
    if found is None:
        raise RetentionError(f"the cut checkpoint of the previous export ({position}) is gone")
    return {
        "position": position,
        "chain_hash": bytes(found.chain_hash).hex(),
        "checkpoint": exported(found),
    }


@contextlib.contextmanager
def _gzip_writer(path: Path) -> Iterator[gzip.GzipFile]:
    """A new file, readable by its owner only, written gzipped."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
        yield out


def _write(out: gzip.GzipFile, value: dict[str, Any]) -> None:
    out.write(canonical.jcs(value) + b"\n")


# -- verifying an export ----------------------------------------------------------------------


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rb") as lines:
        for line in lines:
            yield json.loads(line)


def verify_export(path: Path, keys: dict[str, VerifyingKey]) -> Report:
    """An export checked on its own: every entry hashes to its recorded hash, every link
    follows from the one before, from the anchor to a cut checkpoint whose signature
    holds (and the checkpoints in between)."""
    lines = _lines(path)
    header = next(lines)
    if header.get("format") != FORMAT:
        raise RetentionError(f"{path} is not an audit export ({FORMAT})")
    anchor = header["anchor"]
    report = Report(anchor=anchor["position"], through=anchor["position"], head=header["through"])
    chain_hash = bytes.fromhex(anchor["chain_hash"])
    if anchor["position"] == 0:
        if chain_hash != canonical.genesis(UUID(header["trail"])):
            report.add("chain_altered", 0, None, "the export's anchor is not its trail's genesis")
    else:
        signed = imported(anchor.get("checkpoint"))
        start = Checkpoint.read(*signed, keys) if signed else None
        if (
            start is None
            or not start.trusted
            or (start.position, start.chain_hash) != (anchor["position"], chain_hash)
        ):
            report.add("forged_checkpoint", anchor["position"], None, "the anchor is not signed")
    checkpoints: dict[int, bytes] = {}
    cut: Checkpoint | None = None
    for line in lines:
        if "entry" in line:
            position, entry = line["position"], _stored(line["entry"])
            committed_at = datetime.fromisoformat(line["committed_at"])
            entry_hash = canonical.entry_hash(entry)
            if entry_hash.hex() != line["entry_hash"]:
                report.add("edited", position, entry["id"], f"entry {entry['id']} was changed")
            if position != report.through + 1:
                report.add(
                    "deleted", report.through + 1, None, f"position {report.through + 1} is missing"
                )
            chain_hash = canonical.link(chain_hash, position, committed_at, entry_hash)
            if chain_hash.hex() != line["chain_hash"]:
                report.add(
                    "chain_altered", position, entry["id"], f"link {position} does not follow"
                )
            if checkpoints.get(position, chain_hash) != chain_hash:
                report.add("rewritten", position, None, f"position {position} is not as signed")
            report.through, report.checked = position, report.checked + 1
        elif "checkpoint" in line or "cut" in line:
            signed = imported(line.get("checkpoint") or line["cut"])
            checkpoint = Checkpoint.read(*signed, keys) if signed else None
            if checkpoint is None or not checkpoint.trusted or checkpoint.trail != header["trail"]:
                report.add(
                    "forged_checkpoint", None, None, "a checkpoint's signature does not hold"
                )
                continue
            checkpoints[checkpoint.position] = checkpoint.chain_hash
            if "cut" in line:
                cut = checkpoint
    if cut is None:
        report.add("truncated", report.through + 1, None, "the export has no signed cut")
    elif cut.position != report.through or cut.chain_hash != chain_hash:
        report.add("rewritten", cut.position, None, "the entries do not hash to the signed cut")
    report.last_checkpoint = cut.position if cut else None
    return report


def _stored(entry: dict[str, Any]) -> dict[str, Any]:
    """An exported entry as the columns it was hashed from."""
    return {**entry, "created_at": datetime.fromisoformat(entry["created_at"])}


# -- prune -----------------------------------------------------------------------------------


def _file_sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


async def prune(
    connection: AsyncConnection, keys: dict[str, VerifyingKey], before: date, path: Path
) -> Pruned:
    """Remove the entries created before ``before`` that the export at ``path`` holds:
    the export must be the one recorded for that date, and verify on its own."""
    cut = first_of_month(before)
    recorded = (
        await connection.execute(
            select(_EXPORTS.c.id, _EXPORTS.c.through_position).where(
                _EXPORTS.c.before == cut, _EXPORTS.c.sha256 == _file_sha256(path)
            )
        )
    ).first()
    if recorded is None:
        raise RetentionError(
            f"{path} is not the recorded export of the entries before {before}: export them "
            "first (auditql audit export), and prune with that very file"
        )
    report = verify_export(path, keys)
    if not report.ok:
        raise RetentionError(f"{path} does not verify: {report.problems[0].detail}")
    through = recorded.through_position
    unexported = await connection.scalar(
        select(func.count())
        .select_from(_LOG)
        .outerjoin(_CHAIN, _CHAIN.c.entry_id == _LOG.c.id)
        .where(_LOG.c.created_at < cut)
        .where((_CHAIN.c.position.is_(None)) | (_CHAIN.c.position > through))
    )
    if unexported:
        raise RetentionError(f"{unexported} entries created before {before} are not exported")
    if connection.dialect.name == "postgresql":
        entries, dropped = await _drop_months(connection, cut)
    else:
        entries, dropped = await _delete_rows(connection, cut), []
    with auditing():
        await _owner_delete(
            connection, "audit_chain",
            delete(_CHAIN).where(_CHAIN.c.position <= through, _CHAIN.c.entry_created_at < cut),
        )  # fmt: skip
        await connection.execute(
            _PRUNES.insert(),
            [{"id": uuid7(), "created_at": datetime.now(UTC), "export_id": recorded.id,
              "before": cut, "through_position": through, "entries": entries}],
        )  # fmt: skip
    return Pruned(entries, through, dropped)


async def _drop_months(connection: AsyncConnection, cut: datetime) -> tuple[int, list[str]]:
    """Detach and drop the partitions wholly before ``cut``; the default partition must
    hold nothing that old."""
    strays = await connection.scalar(
        text("SELECT count(*) FROM audit_log_default WHERE created_at < :cut"), {"cut": cut}
    )
    if strays:
        raise RetentionError(
            f"{strays} entries before the cut are in the default partition: run auditql "
            "audit partitions first"
        )
    names = (
        (
            await connection.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'audit_log'::regclass AND c.relname ~ '^audit_log_y'"
                    " ORDER BY c.relname"
                )
            )
        )
        .scalars()
        .all()
    )
    dropped, entries = [], 0
    for name in names:
        year, month = int(name[11:15]), int(name[16:18])
        if _add_months(date(year, month, 1), 1) > cut.date():
            continue
        entries += await connection.scalar(text(f"SELECT count(*) FROM {name}")) or 0
        await connection.execute(text(f"ALTER TABLE audit_log DETACH PARTITION {name}"))
        await connection.execute(text(f"DROP TABLE {name}"))
        dropped.append(name)
    return entries, dropped


async def _delete_rows(connection: AsyncConnection, cut: datetime) -> int:
    with auditing():
        return await _owner_delete(
            connection, "audit_log", delete(_LOG).where(_LOG.c.created_at < cut)
        )


async def _owner_delete(connection: AsyncConnection, table: str, statement: Any) -> int:
    """``statement`` past the table's append-only guard, which is back in place when the
    transaction commits (SQLite's DDL is transactional too)."""
    if connection.dialect.name == "postgresql":
        await connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
        result = await connection.execute(statement)
        await connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only"))
        return result.rowcount
    await connection.execute(text(f"DROP TRIGGER {table}_no_delete"))
    result = await connection.execute(statement)
    await connection.execute(
        text(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}"
            f" BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END"
        )
    )
    return result.rowcount
