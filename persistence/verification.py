"""Verifying the audit trail: recompute every hash and name what does not match.

The walk starts from an *anchor* (the genesis, or for a range the latest trusted
checkpoint before it), recomputes each entry's hash from the row as stored, and keeps
the chain hash those recomputed hashes give; the stored hashes are evidence to compare
with, never trusted. A problem is named by its kind and position:

- ``deleted``: a position is missing, or its entry is gone;
- ``edited``: an entry no longer hashes to what the chain recorded;
- ``reordered``: an entry sits at another entry's position (both are named);
- ``inserted``: an entry the sequencer never saw (no position), or one whose
  ``created_at`` is far older than its commit (backdated);
- ``chain_altered``: a chain row does not link to its predecessor (rows moved,
  renumbered or inserted in the chain itself);
- ``rewritten``: the trail up to a signed checkpoint hashes to something else (both
  tables rewritten consistently);
- ``truncated``: a signed checkpoint names a position past the end of the trail;
- ``forged_checkpoint``: a checkpoint whose signature or key does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, cast
from uuid import UUID

from sqlalchemy import Connection, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence import canonical
from persistence.chain import ENTRY_COLUMNS, Head, Snapshot
from persistence.checkpoints import Checkpoint, Checkpointer, VerifyingKey, exported
from persistence.checkpoints import Kind as CheckpointKind  # verification's Kind is a problem's
from persistence.engine import Database, writing
from persistence.errors import DomainError
from persistence.models.audit_chain import (
    AuditChainLink,
    AuditCheckpoint,
    AuditPrune,
    AuditTrail,
)

Kind = Literal[
    "deleted", "edited", "reordered", "inserted", "chain_altered", "rewritten",
    "truncated", "forged_checkpoint",
]  # fmt: skip

MAX_PROBLEMS = 100
MAX_COMMIT_DELAY = timedelta(seconds=60)
"""The longest a unit of work can take from writing an entry to committing it (it is
bounded by the lock budget, seconds): an entry older than this at commit was backdated."""

_CHAIN = cast(Table, AuditChainLink.__table__)
_LOG = ENTRY_COLUMNS[0].table
_CHECKPOINTS = cast(Table, AuditCheckpoint.__table__)
_PRUNES = cast(Table, AuditPrune.__table__)


@dataclass(frozen=True, slots=True)
class Problem:
    kind: Kind
    position: int | None
    entry_id: UUID | None
    detail: str


@dataclass(slots=True)
class Report:
    anchor: int
    """The position the walk started after (0: the genesis)."""
    through: int
    """The last position checked."""
    head: int
    checked: int = 0
    last_checkpoint: int | None = None
    unattested: int = 0
    """Entries after the last trusted checkpoint: removing them cannot be told from
    never having written them, except against a copy kept elsewhere."""
    pending: int = 0
    """Committed entries not sequenced yet (PostgreSQL; positions come within a second)."""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: Kind, position: int | None, entry_id: UUID | None, detail: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(kind, position, entry_id, detail))


async def verify(
    connection: AsyncConnection,
    keys: dict[str, VerifyingKey],
    *,
    first: int | None = None,
    last: int | None = None,
    external: Iterable[tuple[bytes, bytes]] = (),
) -> Report:
    """Verify positions ``first`` to ``last`` (default: all), with the checkpoints in
    the database and ``external`` ones (statement, signature), e.g. from the logs."""
    return await connection.run_sync(_verify, keys, first, last, list(external))


def _verify(
    connection: Connection,
    keys: dict[str, VerifyingKey],
    first: int | None,
    last: int | None,
    external: list[tuple[bytes, bytes]],
) -> Report:
    trail = connection.execute(select(AuditTrail.id)).scalar_one()
    stored = connection.execute(select(_CHECKPOINTS.c.statement, _CHECKPOINTS.c.signature)).all()
    end = connection.scalar(select(func.max(_CHAIN.c.position)))
    checkpoints, forged = _checkpoints(
        [(bytes(s), bytes(g)) for s, g in stored] + external, keys, trail
    )
    # From the last prune's cut, or the signed checkpoint before ``first``.
    pruned = connection.scalar(select(func.max(_PRUNES.c.through_position))) or 0
    wanted = max(pruned, first - 1 if first is not None else 0)
    anchor = max((p for p in checkpoints if p <= wanted), default=0)
    report = Report(anchor=anchor, through=anchor, head=end or 0)
    for problem in forged:
        report.add(*problem)
    start = Head(anchor, checkpoints[anchor]) if anchor else Head(0, canonical.genesis(trail))
    _walk(connection, report, start, checkpoints, last)
    attested = [p for p in checkpoints if p <= report.through]
    report.last_checkpoint = max(attested, default=None)
    report.unattested = report.through - (report.last_checkpoint or report.anchor)
    beyond = [p for p in checkpoints if p > report.through]
    if beyond and last is None:
        report.add(
            "truncated", report.through + 1, None,
            f"the trail ends at {report.through}; a signed checkpoint attests position "
            f"{max(beyond)}",
        )  # fmt: skip
    if last is None:
        _unsequenced(connection, report)
    return report


class UnverifiedTrailError(DomainError):
    """The trail does not verify: no checkpoint is signed over it."""


async def attest(
    database: Database, checkpointer: Checkpointer, keys: dict[str, VerifyingKey]
) -> dict[str, str]:
    """Sign a checkpoint of the head on demand, once everything since the last trusted
    checkpoint verifies."""
    async with writing(database.engine).begin() as connection:
        last = await connection.run_sync(_last_trusted, keys)
        row = await sign_verified(connection, checkpointer, keys, first=last + 1, kind="demand")
    return exported(row)


async def sign_verified(
    connection: AsyncConnection,
    checkpointer: Checkpointer,
    keys: dict[str, VerifyingKey],
    *,
    first: int,
    last: int | None = None,
    kind: CheckpointKind,
) -> dict[str, Any]:
    """Verify positions ``first`` to ``last`` (default: the head) and sign a checkpoint
    of the last one: a signature never vouches for a trail that was not checked."""
    report = await verify(connection, keys, first=first, last=last)
    if not report.ok:
        problem = report.problems[0]
        raise UnverifiedTrailError(
            f"refusing to sign a {kind} checkpoint: the trail does not verify ({problem.kind} "
            f"at position {problem.position}: {problem.detail}); run auditql audit verify"
        )
    chain_hash = await connection.scalar(
        select(_CHAIN.c.chain_hash).where(_CHAIN.c.position == report.through)
    )
    if chain_hash is None:
        raise UnverifiedTrailError("refusing to sign: the trail has no entries yet")
    return await checkpointer.make(connection, report.through, bytes(chain_hash), kind)


def _last_trusted(connection: Connection, keys: dict[str, VerifyingKey]) -> int:
    trail = connection.execute(select(AuditTrail.id)).scalar_one()
    stored = connection.execute(select(_CHECKPOINTS.c.statement, _CHECKPOINTS.c.signature))
    trusted, _ = _checkpoints([(bytes(s), bytes(g)) for s, g in stored], keys, trail)
    return max(trusted, default=0)


def _checkpoints(
    signed: list[tuple[bytes, bytes]], keys: dict[str, VerifyingKey], trail: Any
) -> tuple[dict[int, bytes], list[tuple[Kind, int | None, None, str]]]:
    """Trusted checkpoints by position, and the problems with the others."""
    trusted: dict[int, bytes] = {}
    forged: list[tuple[Kind, int | None, None, str]] = []
    for statement, signature in signed:
        try:
            checkpoint = Checkpoint.read(statement, signature, keys)
        except (ValueError, KeyError, TypeError):
            forged.append(("forged_checkpoint", None, None, "a checkpoint cannot be read"))
            continue
        if not checkpoint.trusted or checkpoint.trail != str(trail):
            why = "unknown key" if checkpoint.key_id not in keys else "bad signature"
            if checkpoint.trusted:
                why = "another trail's"
            forged.append(
                ("forged_checkpoint", checkpoint.position, None,
                 f"checkpoint of position {checkpoint.position} ({why}, key "
                 f"{checkpoint.key_id!r})")
            )  # fmt: skip
            continue
        if trusted.get(checkpoint.position, checkpoint.chain_hash) != checkpoint.chain_hash:
            forged.append(
                ("rewritten", checkpoint.position, None,
                 f"two signed checkpoints disagree on position {checkpoint.position}")
            )  # fmt: skip
        trusted[checkpoint.position] = checkpoint.chain_hash
    return trusted, forged


def _walk(
    connection: Connection,
    report: Report,
    start: Head,
    checkpoints: dict[int, bytes],
    last: int | None,
) -> None:
    query = (
        select(
            _CHAIN.c.position,
            _CHAIN.c.entry_id,
            _CHAIN.c.committed_at,
            _CHAIN.c.entry_hash,
            _CHAIN.c.chain_hash,
            _LOG.c.id.label("found"),
            *ENTRY_COLUMNS,
        )
        .outerjoin(_LOG, _LOG.c.id == _CHAIN.c.entry_id)
        .where(_CHAIN.c.position > start.position)
        .order_by(_CHAIN.c.position)
    )
    if last is not None:
        query = query.where(_CHAIN.c.position <= last)
    true_hash = stored_previous = start.chain_hash
    expected = start.position + 1
    problems_since_checkpoint = False
    reordered: set[int] = set()
    rows = connection.execute(query, execution_options={"yield_per": 2000})
    for row in rows:
        position = row.position
        if position != expected:
            report.add(
                "deleted", expected, None,
                f"positions {expected} to {position - 1} are missing from the chain",
            )  # fmt: skip
            problems_since_checkpoint = True
        entry_hash = bytes(row.entry_hash)
        if row.found is None:
            report.add("deleted", position, row.entry_id, f"entry {row.entry_id} is gone")
            problems_since_checkpoint = True
            recomputed = None
        else:
            recomputed = canonical.entry_hash(row._mapping)
            if recomputed != entry_hash and position not in reordered:
                other = _position_of(connection, recomputed)
                if other is not None and other != position:
                    reordered.update((position, other))
                    report.add(
                        "reordered", position, row.id,
                        f"entry {row.id} belongs at position {other}, not {position}",
                    )  # fmt: skip
                else:
                    report.add("edited", position, row.id, f"entry {row.id} was changed")
                problems_since_checkpoint = True
            elif row.committed_at - row.created_at > MAX_COMMIT_DELAY:
                report.add(
                    "inserted", position, row.id,
                    f"entry {row.id} was created at {canonical.timestamp(row.created_at)} "
                    f"but committed at {canonical.timestamp(row.committed_at)} (backdated)",
                )  # fmt: skip
                problems_since_checkpoint = True
        chain_hash = bytes(row.chain_hash)
        if canonical.link(stored_previous, position, row.committed_at, entry_hash) != chain_hash:
            report.add(
                "chain_altered", position, row.entry_id,
                f"the chain row at position {position} does not link to its predecessor",
            )  # fmt: skip
            problems_since_checkpoint = True
        true_hash = canonical.link(true_hash, position, row.committed_at, recomputed or entry_hash)
        stored_previous = chain_hash
        if position in checkpoints:
            if true_hash != checkpoints[position] and not problems_since_checkpoint:
                report.add(
                    "rewritten", position, None,
                    f"the trail up to position {position} does not hash to its signed "
                    "checkpoint",
                )  # fmt: skip
            true_hash = checkpoints[position]  # later segments are judged on their own
            problems_since_checkpoint = False
        expected = position + 1
        report.through = position
        report.checked += 1


def _position_of(connection: Connection, entry_hash: bytes) -> int | None:
    return connection.scalar(
        select(_CHAIN.c.position).where(_CHAIN.c.entry_hash == entry_hash).limit(1)
    )


def _unsequenced(connection: Connection, report: Report) -> None:
    """Entries without a position: pending if their transaction committed after the
    sequencer's last pass (PostgreSQL), otherwise inserted behind its back."""
    missing = select(_LOG.c.id).where(
        ~select(_CHAIN.c.entry_id).where(_CHAIN.c.entry_id == _LOG.c.id).exists()
    )
    if connection.dialect.name == "postgresql":
        last = connection.scalar(
            select(_CHAIN.c.snapshot)
            .where(_CHAIN.c.snapshot.is_not(None))
            .order_by(_CHAIN.c.position.desc())
            .limit(1)
        )
        snapshot = Snapshot.parse(last) if last is not None else None
        found = [
            (row.id, row.xid == 0 or (snapshot is not None and snapshot.sees(row.xid)))
            for row in connection.execute(missing.add_columns(text("xid")))
        ]
    else:
        found = [(row.id, True) for row in connection.execute(missing)]
    for entry_id, seen in found:
        if seen:
            report.add(
                "inserted", None, entry_id,
                f"entry {entry_id} was written outside the sequencer (it has no position)",
            )  # fmt: skip
        else:
            report.pending += 1


async def verify_entity(connection: AsyncConnection, entity_id: str) -> bool | None:
    """Whether every entry of one object hashes to what the chain recorded and links
    to its predecessor; None while one of them awaits its position. The whole trail's
    proof (checkpoints, truncation) is :func:`verify`'s."""
    return await connection.run_sync(_verify_entity, entity_id)


def _predecessor_hash(connection: Connection, position: int, stored: Any) -> bytes | None:
    """The chain hash ``position`` links to: its predecessor's, the genesis, or, when the
    predecessor was pruned, the cut checkpoint's that attests it."""
    if stored is not None:
        return bytes(stored)
    if position == 1:
        return canonical.genesis(connection.execute(select(AuditTrail.id)).scalar_one())
    cut = connection.scalar(
        select(_CHECKPOINTS.c.chain_hash)
        .where(_CHECKPOINTS.c.position == position - 1, _CHECKPOINTS.c.kind == "cut")
        .limit(1)
    )
    return None if cut is None else bytes(cut)


def _verify_entity(connection: Connection, entity_id: str) -> bool | None:
    previous = _CHAIN.alias("previous")
    rows = connection.execute(
        select(
            *ENTRY_COLUMNS,
            _CHAIN.c.position,
            _CHAIN.c.committed_at,
            _CHAIN.c.entry_hash,
            _CHAIN.c.chain_hash,
            previous.c.chain_hash.label("previous_hash"),
        )
        .outerjoin(_CHAIN, _CHAIN.c.entry_id == _LOG.c.id)
        .outerjoin(previous, previous.c.position == _CHAIN.c.position - 1)
        .where(_LOG.c.entity_id == entity_id)
    ).all()
    if any(row.position is None for row in rows):
        return None
    for row in rows:
        before = _predecessor_hash(connection, row.position, row.previous_hash)
        if before is None:
            return False  # its predecessor is gone
        entry_hash = canonical.entry_hash(row._mapping)
        linked = canonical.link(before, row.position, row.committed_at, entry_hash)
        if entry_hash != bytes(row.entry_hash) or linked != bytes(row.chain_hash):
            return False
    return True
