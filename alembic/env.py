"""Alembic environment: async engines, both backends, batch mode on SQLite.

The URL comes from ``AUDITQL_DATABASE_URL`` unless a caller hands over a connection in
``config.attributes["connection"]`` (the test suite and ``auditql migrate`` do), or a
URL in ``config.attributes["url"]`` for offline SQL (``auditql migrate --sql``).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from persistence.base import Base, UTCDateTime
from persistence.models import __all__ as _models  # noqa: F401 - fills the metadata
from persistence.settings import DatabaseSettings

target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render application types as plain SQLAlchemy types, so that migrations never
    import the application and stay valid as it changes."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


# PostgreSQL only, and mapped by no model: the transaction that wrote each audit entry,
# for the sequencer (persistence.chain), and the audit log's monthly partitions, with
# the indexes they inherit (persistence.retention).
_DATABASE_ONLY = {("column", "xid"), ("index", "ix_audit_log_xid")}
_PARTITION = re.compile(r"audit_log_(default|y\d{4}m\d{2})")


def _include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    if not reflected or compare_to is not None:
        return True
    table = obj if type_ == "table" else getattr(obj, "table", None)
    in_partition = table is not None and _PARTITION.fullmatch(str(table.name))
    return (type_, name) not in _DATABASE_ONLY and not in_partition


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        include_object=_include_object,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def run_migrations_offline() -> None:
    """``--sql``: print the SQL for the URL's dialect instead of running it."""
    context.configure(
        url=context.config.attributes.get("url") or DatabaseSettings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async(DatabaseSettings().database_url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
