"""initial schema: users, tokens, posts, comments, tags, feature flags and the audit log

Generated against PostgreSQL 15 and reviewed by hand. The audit log is append-only:
on PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE; on SQLite triggers refuse
UPDATE and DELETE.

Revision ID: cfe7dd55f584
Revises:
Create Date: 2026-11-23 18:41:54.120077
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "cfe7dd55f584"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Ref: https://www.postgresql.org/docs/15/plpgsql-trigger.html
_PG_REFUSE = """
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""
_PG_TRIGGERS = (
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log"
    " FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()",
)
_SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER audit_log_no_{op_name.lower()} BEFORE {op_name} ON audit_log"
    f" BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: {op_name} refused'); END"
    for op_name in ("UPDATE", "DELETE")
)


def _create_append_only_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in (_PG_REFUSE, *_PG_TRIGGERS):
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def _drop_append_only_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_refuse_change()")
    else:
        op.execute("DROP TRIGGER audit_log_no_delete")
        op.execute("DROP TRIGGER audit_log_no_update")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=36), nullable=False),
        sa.Column(
            "changes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        "ix_audit_log_actor_id_created_at", "audit_log", ["actor_id", "created_at"], unique=False
    )
    op.create_index("ix_audit_log_created_at_id", "audit_log", ["created_at", "id"], unique=False)
    op.create_index(
        "ix_audit_log_entity_id_created_at_id",
        "audit_log",
        ["entity_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_audit_log_entity_type_entity_id",
        "audit_log",
        ["entity_type", "entity_id"],
        unique=False,
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_superuser", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lower_case")),
        sa.CheckConstraint(
            "length(username) BETWEEN 1 AND 50", name=op.f("ck_users_username_length")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_users_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_users_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_index(op.f("ix_users_created_by_id"), "users", ["created_by_id"], unique=False)
    op.create_index(
        "ix_users_is_active_created_at", "users", ["is_active", "created_at"], unique=False
    )
    op.create_index(op.f("ix_users_updated_by_id"), "users", ["updated_by_id"], unique=False)
    op.create_index(
        "uq_users_username_lower", "users", [sa.literal_column("lower(username)")], unique=True
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)
    op.create_table(
        "feature_flags",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("rollout_percentage", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "length(key) BETWEEN 2 AND 64 AND ltrim(substr(key, 1, 1), 'abcdefghijklmnopqrstuvwxyz') = '' AND ltrim(key, 'abcdefghijklmnopqrstuvwxyz0123456789_.-') = ''",
            name=op.f("ck_feature_flags_key_format"),
        ),
        sa.CheckConstraint(
            "rollout_percentage BETWEEN 0 AND 100", name=op.f("ck_feature_flags_rollout_percentage")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_feature_flags_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_feature_flags_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_flags")),
        sa.UniqueConstraint("key", name=op.f("uq_feature_flags_key")),
    )
    op.create_index(
        op.f("ix_feature_flags_created_by_id"), "feature_flags", ["created_by_id"], unique=False
    )
    op.create_index(
        op.f("ix_feature_flags_updated_by_id"), "feature_flags", ["updated_by_id"], unique=False
    )
    op.create_table(
        "posts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.String(length=20),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status = 'draft' OR published_at IS NOT NULL", name=op.f("ck_posts_published_at_set")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'archived')", name=op.f("ck_posts_status")
        ),
        sa.CheckConstraint("length(slug) BETWEEN 1 AND 200", name=op.f("ck_posts_slug_length")),
        sa.CheckConstraint("length(title) BETWEEN 1 AND 200", name=op.f("ck_posts_title_length")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_posts_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deleted_by_id"],
            ["users.id"],
            name=op.f("fk_posts_deleted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_posts_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    op.create_index(
        "ix_posts_created_at_id_live",
        "posts",
        ["created_at", "id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_posts_created_by_id_created_at", "posts", ["created_by_id", "created_at"], unique=False
    )
    op.create_index(op.f("ix_posts_deleted_by_id"), "posts", ["deleted_by_id"], unique=False)
    op.create_index(
        "ix_posts_status_published_at", "posts", ["status", "published_at"], unique=False
    )
    op.create_index(op.f("ix_posts_updated_by_id"), "posts", ["updated_by_id"], unique=False)
    op.create_index(
        "uq_posts_slug_live",
        "posts",
        ["slug"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "length(color) = 7 AND substr(color, 1, 1) = '#' AND ltrim(substr(color, 2), '0123456789abcdef') = ''",
            name=op.f("ck_tags_color_hex"),
        ),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 50", name=op.f("ck_tags_name_length")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_tags_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_tags_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
    )
    op.create_index(op.f("ix_tags_created_by_id"), "tags", ["created_by_id"], unique=False)
    op.create_index(op.f("ix_tags_updated_by_id"), "tags", ["updated_by_id"], unique=False)
    op.create_index("uq_tags_name_lower", "tags", [sa.literal_column("lower(name)")], unique=True)
    op.create_table(
        "comments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "length(body) BETWEEN 1 AND 10000", name=op.f("ck_comments_body_length")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_comments_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deleted_by_id"],
            ["users.id"],
            name=op.f("fk_comments_deleted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_comments_post_id_posts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_comments_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    op.create_index(
        "ix_comments_created_by_id_created_at",
        "comments",
        ["created_by_id", "created_at"],
        unique=False,
    )
    op.create_index(op.f("ix_comments_deleted_by_id"), "comments", ["deleted_by_id"], unique=False)
    op.create_index(
        "ix_comments_post_id_created_at_id",
        "comments",
        ["post_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(op.f("ix_comments_updated_by_id"), "comments", ["updated_by_id"], unique=False)
    op.create_table(
        "flag_overrides",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("flag_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_flag_overrides_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["feature_flags.id"],
            name=op.f("fk_flag_overrides_flag_id_feature_flags"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_flag_overrides_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_flag_overrides_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_overrides")),
        sa.UniqueConstraint("flag_id", "user_id", name=op.f("uq_flag_overrides_flag_id_user_id")),
    )
    op.create_index(
        op.f("ix_flag_overrides_created_by_id"), "flag_overrides", ["created_by_id"], unique=False
    )
    op.create_index(
        op.f("ix_flag_overrides_updated_by_id"), "flag_overrides", ["updated_by_id"], unique=False
    )
    op.create_index(op.f("ix_flag_overrides_user_id"), "flag_overrides", ["user_id"], unique=False)
    op.create_table(
        "post_tags",
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("tag_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_post_tags_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_post_tags_post_id_posts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_post_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("post_id", "tag_id", name=op.f("pk_post_tags")),
    )
    op.create_index(
        op.f("ix_post_tags_created_by_id"), "post_tags", ["created_by_id"], unique=False
    )
    op.create_index(op.f("ix_post_tags_tag_id"), "post_tags", ["tag_id"], unique=False)
    _create_append_only_guard()


def downgrade() -> None:
    _drop_append_only_guard()
    op.drop_index(op.f("ix_post_tags_tag_id"), table_name="post_tags")
    op.drop_index(op.f("ix_post_tags_created_by_id"), table_name="post_tags")
    op.drop_table("post_tags")
    op.drop_index(op.f("ix_flag_overrides_user_id"), table_name="flag_overrides")
    op.drop_index(op.f("ix_flag_overrides_updated_by_id"), table_name="flag_overrides")
    op.drop_index(op.f("ix_flag_overrides_created_by_id"), table_name="flag_overrides")
    op.drop_table("flag_overrides")
    op.drop_index(op.f("ix_comments_updated_by_id"), table_name="comments")
    op.drop_index("ix_comments_post_id_created_at_id", table_name="comments")
    op.drop_index(op.f("ix_comments_deleted_by_id"), table_name="comments")
    op.drop_index("ix_comments_created_by_id_created_at", table_name="comments")
    op.drop_table("comments")
    op.drop_index("uq_tags_name_lower", table_name="tags")
    op.drop_index(op.f("ix_tags_updated_by_id"), table_name="tags")
    op.drop_index(op.f("ix_tags_created_by_id"), table_name="tags")
    op.drop_table("tags")
    op.drop_index(
        "uq_posts_slug_live",
        table_name="posts",
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index(op.f("ix_posts_updated_by_id"), table_name="posts")
    op.drop_index("ix_posts_status_published_at", table_name="posts")
    op.drop_index(op.f("ix_posts_deleted_by_id"), table_name="posts")
    op.drop_index("ix_posts_created_by_id_created_at", table_name="posts")
    op.drop_index(
        "ix_posts_created_at_id_live",
        table_name="posts",
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_table("posts")
    op.drop_index(op.f("ix_feature_flags_updated_by_id"), table_name="feature_flags")
    op.drop_index(op.f("ix_feature_flags_created_by_id"), table_name="feature_flags")
    op.drop_table("feature_flags")
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("uq_users_username_lower", table_name="users")
    op.drop_index(op.f("ix_users_updated_by_id"), table_name="users")
    op.drop_index("ix_users_is_active_created_at", table_name="users")
    op.drop_index(op.f("ix_users_created_by_id"), table_name="users")
    op.drop_table("users")
    op.drop_index("ix_audit_log_entity_type_entity_id", table_name="audit_log")
    op.drop_index("ix_audit_log_entity_id_created_at_id", table_name="audit_log")
    op.drop_index("ix_audit_log_created_at_id", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_id_created_at", table_name="audit_log")
    op.drop_table("audit_log")
