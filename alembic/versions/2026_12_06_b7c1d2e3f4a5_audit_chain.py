"""audit chain: commit-ordered positions, hash chain and signed checkpoints

Adds the trail's id, the chain and the checkpoints, all append-only like the audit log
(refused UPDATE, DELETE and TRUNCATE, to their owner too). On PostgreSQL every entry
now records its transaction (``audit_log.xid``, for the sequencer in
``persistence.chain``); entries written before this revision record ``0``, and the
first pass chains them before any other, in the order they were created.

Revision ID: b7c1d2e3f4a5
Revises: 5004ee7f32cf
Create Date: 2026-12-06 05:30:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "b7c1d2e3f4a5"
down_revision: str | None = "5004ee7f32cf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("audit_trail", "audit_chain", "audit_checkpoint")

# Ref: https://www.postgresql.org/docs/15/plpgsql-trigger.html
_PG_REFUSE = """
CREATE FUNCTION append_only_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def _pg_triggers(table: str) -> tuple[str, ...]:
    return (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION append_only_refuse_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION append_only_refuse_change()",
    )


def _sqlite_triggers(table: str) -> tuple[str, ...]:
    return tuple(
        f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
        for action in ("UPDATE", "DELETE")
    )


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "audit_trail",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_trail")),
    )
    op.create_table(
        "audit_chain",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("entry_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("position > 0", name=op.f("ck_audit_chain_position_positive")),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_audit_chain")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_audit_chain_entry_id")),
    )
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("statement", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('interval', 'demand', 'cut')", name=op.f("ck_audit_checkpoint_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoint")),
    )
    op.create_index("ix_audit_checkpoint_position", "audit_checkpoint", ["position"], unique=False)
    if postgresql:
        # A constant default first (no table rewrite, and entries written before record
        # 0), then the writing transaction's 64-bit id (xid8 fits a bigint).
        op.execute("ALTER TABLE audit_log ADD COLUMN xid bigint NOT NULL DEFAULT 0")
        op.execute(
            "ALTER TABLE audit_log ALTER COLUMN xid"
            " SET DEFAULT CAST(CAST(pg_current_xact_id() AS text) AS bigint)"
        )
        op.execute("CREATE INDEX ix_audit_log_xid ON audit_log (xid)")
        op.execute(_PG_REFUSE)
    for table in _TABLES:
        for statement in _pg_triggers(table) if postgresql else _sqlite_triggers(table):
            op.execute(statement)
    # The trail's id seeds the chain: two installations never share one.
    trail = sa.table(
        "audit_trail",
        sa.column("id", sa.Uuid()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(trail, [{"id": uuid.uuid4(), "created_at": datetime.now(UTC)}])


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in _TABLES:
        if postgresql:
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        else:
            op.execute(f"DROP TRIGGER {table}_no_delete")
            op.execute(f"DROP TRIGGER {table}_no_update")
    if postgresql:
        op.execute("DROP FUNCTION append_only_refuse_change()")
        op.execute("DROP INDEX ix_audit_log_xid")
        op.execute("ALTER TABLE audit_log DROP COLUMN xid")
    op.drop_index("ix_audit_checkpoint_position", table_name="audit_checkpoint")
    op.drop_table("audit_checkpoint")
    op.drop_table("audit_chain")
    op.drop_table("audit_trail")
