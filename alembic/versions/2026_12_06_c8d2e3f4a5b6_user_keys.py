"""user keys: personal audit values sealed under per-user keys

Adds ``user_keys`` (each user's data key, wrapped under a key from settings) and widens
``audit_log.ip_address`` and ``user_agent`` to text, which now hold sealed values. The
keys themselves cannot be made here, since the migration does not know the KEKs: a user
gets one at their first write that seals a value (persistence.personal). Entries written
before this revision keep their values in plain text, out of erasure's reach.

On SQLite a column's type changes by rebuilding the table, which drops its triggers:
those of audit_log (the append-only guard, and any a later revision adds) are read
before and made again after.

Revision ID: c8d2e3f4a5b6
Revises: b7c1d2e3f4a5
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "c8d2e3f4a5b6"
down_revision: str | None = "b7c1d2e3f4a5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WIDENED = (("ip_address", 45), ("user_agent", 512))


def upgrade() -> None:
    op.create_table(
        "user_keys",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=True),
        sa.Column("wrapped_dek", sa.LargeBinary(), nullable=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(erased_at IS NULL AND kek_id IS NOT NULL AND wrapped_dek IS NOT NULL)"
            " OR (erased_at IS NOT NULL AND kek_id IS NULL AND wrapped_dek IS NULL)",
            name=op.f("ck_user_keys_key_or_erased"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_keys")),
    )
    _retype_audit_log({column: (sa.String(length), sa.Text()) for column, length in _WIDENED})


def downgrade() -> None:
    # PostgreSQL refuses this while any entry holds a sealed value (longer than the old
    # columns): going back would cut them.
    _retype_audit_log({column: (sa.Text(), sa.String(length)) for column, length in _WIDENED})
    op.drop_table("user_keys")


def _retype_audit_log(changes: dict[str, tuple[sa.types.TypeEngine, sa.types.TypeEngine]]) -> None:
    bind = op.get_bind()
    triggers: list[str] = []
    if bind.dialect.name == "sqlite":
        if context.is_offline_mode():
            # No table to read and rebuild offline (`auditql migrate --sql`); SQLite does
            # not enforce a VARCHAR's length, so the old columns hold sealed values too.
            return
        triggers = list(
            bind.execute(
                sa.text(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
                )
            ).scalars()
        )
    with op.batch_alter_table("audit_log") as batch_op:
        for column, (old, new) in changes.items():
            batch_op.alter_column(column, existing_type=old, type_=new, existing_nullable=True)
    for trigger in triggers:  # SQLite dropped them with the old table
        op.execute(trigger)
