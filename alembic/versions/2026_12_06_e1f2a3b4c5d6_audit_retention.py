"""audit retention: the audit log partitioned by month; exports and prunes recorded

On PostgreSQL ``audit_log`` becomes a table partitioned by month of ``created_at``
(``audit_log_y2026m12``...), with a default partition so that a write never fails for
want of one, partitions for this month and the next three, and every entry copied over.
Its primary key becomes ``(id, created_at)``: a partitioned table's unique keys include
the partition key. The append-only guard is on every partition: the row trigger is
cloned to each, the TRUNCATE trigger is created on each. The application role's grants
on the old table are given again on the new one. Exports and prunes are recorded in two
append-only tables, on both databases.

Revision ID: e1f2a3b4c5d6
Revises: c8d2e3f4a5b6
Create Date: 2026-12-06 06:30:00
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "e1f2a3b4c5d6"
down_revision: str | None = "c8d2e3f4a5b6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MONTHS_AHEAD = 3
_INDEXES = {
    "ix_audit_log_actor_id_created_at": "actor_id, created_at",
    "ix_audit_log_created_at_id": "created_at, id",
    "ix_audit_log_entity_id_created_at_id": "entity_id, created_at, id",
    "ix_audit_log_entity_type_entity_id": "entity_type, entity_id",
    "ix_audit_log_xid": "xid",
}
_NEW_TABLES = ("audit_export", "audit_prune")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "audit_export",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("through_position", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_export")),
    )
    op.create_table(
        "audit_prune",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("export_id", sa.Uuid(), nullable=False),
        sa.Column("before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("through_position", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_prune")),
    )
    for table in _NEW_TABLES:
        if postgresql:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION append_only_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION append_only_refuse_change()"
            )
        else:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}"
                    f" BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
                )
    if postgresql:
        _partition_audit_log()


def _grants() -> list[tuple[str, str]]:
    """Who else holds what on ``audit_log`` (offline, for ``--sql``: unknown, and
    ``auditql grant`` gives it again)."""
    if op.get_context().as_sql:
        return []
    rows = op.get_bind().execute(
        sa.text(
            "SELECT grantee, string_agg(privilege_type, ', ') FROM"
            " information_schema.role_table_grants WHERE table_schema = current_schema()"
            " AND table_name = 'audit_log' AND grantee <> current_user GROUP BY grantee"
        )
    )
    return [(grantee, privileges) for grantee, privileges in rows]


def _oldest_month() -> date:
    today = datetime.now(UTC).date()
    if op.get_context().as_sql:
        return _month(today)
    oldest = op.get_bind().scalar(sa.text("SELECT min(created_at) FROM audit_log_unpartitioned"))
    return _month(oldest.astimezone(UTC).date() if oldest else today)


def _partition_audit_log() -> None:
    grants = _grants()
    op.execute("ALTER TABLE audit_log RENAME TO audit_log_unpartitioned")
    op.execute("ALTER TABLE audit_log_unpartitioned DROP CONSTRAINT pk_audit_log")
    for index in _INDEXES:
        op.execute(f"DROP INDEX {index}")
    op.execute(
        "CREATE TABLE audit_log (LIKE audit_log_unpartitioned INCLUDING DEFAULTS"
        " INCLUDING CONSTRAINTS) PARTITION BY RANGE (created_at)"
    )
    op.execute("ALTER TABLE audit_log ADD CONSTRAINT pk_audit_log PRIMARY KEY (id, created_at)")
    for index, columns in _INDEXES.items():
        op.execute(f"CREATE INDEX {index} ON audit_log ({columns})")
    month = _oldest_month()
    last = _add_months(_month(datetime.now(UTC).date()), _MONTHS_AHEAD)
    partitions = ["audit_log_default"]
    op.execute("CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT")
    while month <= last:
        name = f"audit_log_y{month.year}m{month.month:02d}"
        op.execute(
            f"CREATE TABLE {name} PARTITION OF audit_log FOR VALUES FROM ('{month} 00:00+00')"
            f" TO ('{_add_months(month, 1)} 00:00+00')"
        )
        partitions.append(name)
        month = _add_months(month, 1)
    op.execute("INSERT INTO audit_log SELECT * FROM audit_log_unpartitioned")
    op.execute("DROP TABLE audit_log_unpartitioned")
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()"
    )
    for table in ("audit_log", *partitions):
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()"
        )
    for grantee, privileges in grants:
        op.execute(f'GRANT {privileges} ON audit_log TO "{grantee}"')


def _month(day: date) -> date:
    return day.replace(day=1)


def _add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        _unpartition_audit_log()
    for table in _NEW_TABLES:
        if postgresql:
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        else:
            op.execute(f"DROP TRIGGER {table}_no_delete")
            op.execute(f"DROP TRIGGER {table}_no_update")
    op.drop_table("audit_prune")
    op.drop_table("audit_export")


def _unpartition_audit_log() -> None:
    grants = _grants()
    op.execute("ALTER TABLE audit_log RENAME TO audit_log_partitioned")
    op.execute("ALTER TABLE audit_log_partitioned DROP CONSTRAINT pk_audit_log")
    for index in _INDEXES:
        op.execute(f"DROP INDEX {index}")
    op.execute(
        "CREATE TABLE audit_log (LIKE audit_log_partitioned INCLUDING DEFAULTS"
        " INCLUDING CONSTRAINTS)"
    )
    op.execute("ALTER TABLE audit_log ADD CONSTRAINT pk_audit_log PRIMARY KEY (id)")
    for index, columns in _INDEXES.items():
        op.execute(f"CREATE INDEX {index} ON audit_log ({columns})")
    op.execute("INSERT INTO audit_log SELECT * FROM audit_log_partitioned")
    op.execute("DROP TABLE audit_log_partitioned")  # and its partitions, with their triggers
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()"
    )
    for grantee, privileges in grants:
        op.execute(f'GRANT {privileges} ON audit_log TO "{grantee}"')
