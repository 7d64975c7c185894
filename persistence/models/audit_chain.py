from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, CheckConstraint, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from persistence.base import Base
from persistence.mixins import AppendOnly, AppendOnlyLogBase, CreatedAtMixin

HASH_BYTES = 32


class AuditTrail(AppendOnlyLogBase):
    """The one row naming this installation's trail: its id seeds the chain
    (:func:`persistence.canonical.genesis`), so two installations never share one."""

    __tablename__ = "audit_trail"


class AuditChainLink(Base, AppendOnly, CreatedAtMixin):
    """An audit entry's place in commit order and its link in the hash chain.

    Written by the sequencer (:mod:`persistence.chain`) once the entry's transaction
    has committed; the entry itself is never touched. ``snapshot`` is set on the last
    link of each pass: the database snapshot the pass read in, where the next one
    starts (PostgreSQL only). ``created_at`` is when the sequencer linked it.
    """

    __tablename__ = "audit_chain"

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry_id: Mapped[UUID] = mapped_column(unique=True)
    entry_created_at: Mapped[datetime]
    committed_at: Mapped[datetime]
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(HASH_BYTES))
    chain_hash: Mapped[bytes] = mapped_column(LargeBinary(HASH_BYTES))
    snapshot: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint("position > 0", name="position_positive"),)


class AuditCheckpoint(AppendOnlyLogBase):
    """A signed statement of the chain's head at ``position``
    (:mod:`persistence.checkpoints`). The key that signed it is never in the database."""

    __tablename__ = "audit_checkpoint"

    position: Mapped[int] = mapped_column(BigInteger, index=True)
    chain_hash: Mapped[bytes] = mapped_column(LargeBinary(HASH_BYTES))
    kind: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(64))
    statement: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (CheckConstraint("kind IN ('interval', 'demand', 'cut')", name="kind"),)


class AuditExport(AppendOnlyLogBase):
    """Entries created before ``before`` written to a file, through ``through_position``,
    ending with a signed ``cut`` checkpoint (:mod:`persistence.retention`)."""

    __tablename__ = "audit_export"

    before: Mapped[datetime]
    through_position: Mapped[int] = mapped_column(BigInteger)
    entries: Mapped[int] = mapped_column(BigInteger)
    checkpoint_id: Mapped[UUID]
    sha256: Mapped[bytes] = mapped_column(LargeBinary(HASH_BYTES))


class AuditPrune(AppendOnlyLogBase):
    """An export's entries removed from the database; verification starts from its cut."""

    __tablename__ = "audit_prune"

    export_id: Mapped[UUID]
    before: Mapped[datetime]
    through_position: Mapped[int] = mapped_column(BigInteger)
    entries: Mapped[int] = mapped_column(BigInteger)
