"""The application role's privileges on PostgreSQL: what ``auditql grant ROLE`` runs.

Two roles share the database. The owner owns the tables and runs the migrations. The
application role serves requests with what that needs and nothing more: it reads and
writes the tables, but only reads and appends to the append-only logs (the models
marked ``AppendOnly``: the audit log, its chain and checkpoints) and only reads
``alembic_version``. It owns nothing, and ALTER TABLE (a trigger disabled), DROP and
every other change of structure take ownership, not privileges; so the migrations'
append-only triggers become a second wall instead of the only one.

The grants name the tables that exist, one by one. There is deliberately no ALTER
DEFAULT PRIVILEGES: it would give the role write access to every future table, a
future append-only log included, with nobody reviewing it. The release step runs
``auditql grant`` again after ``auditql migrate`` instead; a table it missed is refused
to the application loudly, never granted silently.

No sequence is granted: ``users.id`` is an identity column, whose sequence an INSERT
draws from without a grant of its own, and every other key is a UUIDv7 made in Python.

Ref: https://www.postgresql.org/docs/15/ddl-priv.html
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

import persistence.models  # noqa: F401 - fills the registry _append_only_tables reads
from persistence.base import Base
from persistence.errors import DomainError
from persistence.mixins import AppendOnly

# Alembic's default name; alembic/env.py keeps it.
VERSION_TABLE = "alembic_version"
READ_WRITE = ("SELECT", "INSERT", "UPDATE", "DELETE")
APPEND_ONLY = ("SELECT", "INSERT")
READ_ONLY = ("SELECT",)
_INSUFFICIENT_PRIVILEGE = "42501"
_NOT_OWNER = "the tables' privileges are not yours to grant: run auditql grant as their owner"
_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


class PrivilegeError(DomainError):
    """The role cannot safely be given the application's privileges, or did not get them."""


def _append_only_tables() -> frozenset[str]:
    return frozenset(
        str(mapper.persist_selectable.description)
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, AppendOnly)
    )


def _privileges_for(table: str) -> tuple[str, ...]:
    if table in _append_only_tables():
        return APPEND_ONLY
    return READ_ONLY if table == VERSION_TABLE else READ_WRITE


async def grant(connection: AsyncConnection, role: str, *, apply: bool = True) -> list[str]:
    """The statements that give ``role`` exactly the application's privileges on the
    tables of the current schema; with ``apply``, run them and check the outcome.

    Run it as the owner of the tables, in a transaction: a failed check raises
    ``PrivilegeError`` and the caller's rollback undoes the grants."""
    await _refuse_unsafe(connection, role)
    database, schema, tables = await _target(connection)
    quote = connection.dialect.identifier_preparer.quote
    grantee = quote(role)

    def names(selected: list[str]) -> str:
        return ", ".join(f"{quote(schema)}.{quote(table)}" for table in selected)

    statements = [
        f"GRANT CONNECT ON DATABASE {quote(database)} TO {grantee}",
        f"GRANT USAGE ON SCHEMA {quote(schema)} TO {grantee}",
        # From a clean slate, so that running it again also takes back a stray grant.
        f"REVOKE ALL ON {names(tables)} FROM {grantee}",
    ]
    for privileges in (READ_WRITE, APPEND_ONLY, READ_ONLY):
        selected = [table for table in tables if _privileges_for(table) == privileges]
        if selected:
            statements.append(f"GRANT {', '.join(privileges)} ON {names(selected)} TO {grantee}")
    if apply:
        try:
            for statement in statements:
                await connection.exec_driver_sql(statement)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                raise
            raise PrivilegeError(_NOT_OWNER) from exc
        await _verify(connection, role)
    return statements


async def _refuse_unsafe(connection: AsyncConnection, role: str) -> None:
    """No grant restrains a superuser, nor a role that owns (or may act as the owner of)
    the database, the schema or a table: an owner may ALTER and DROP them whatever is
    granted, and a schema's owner may DROP SCHEMA ... CASCADE over others' tables."""
    row = (
        await connection.execute(
            text("""
            SELECT r.rolsuper, r.rolcreaterole, EXISTS (
                SELECT FROM (
                    SELECT datdba FROM pg_database WHERE datname = current_database()
                    UNION SELECT nspowner FROM pg_namespace WHERE nspname = current_schema()
                    UNION SELECT relowner FROM pg_class
                    WHERE relnamespace = current_schema()::regnamespace
                ) AS owners(owner)
                WHERE pg_has_role(r.oid, owners.owner, 'MEMBER'))
            FROM pg_roles AS r WHERE r.rolname = :role
            """),
            {"role": role},
        )
    ).one_or_none()
    if row is None:
        raise PrivilegeError(f'role "{role}" does not exist: create it first (CREATE ROLE)')
    superuser, createrole, owner = row
    if superuser:
        raise PrivilegeError(f'role "{role}" is a superuser: no privilege restrains it')
    if createrole:
        raise PrivilegeError(
            f'role "{role}" has CREATEROLE, with which it can take other roles\' powers'
        )
    if owner:
        raise PrivilegeError(
            f'role "{role}" owns (or is a member of the owner of) the database, the schema or '
            "a table: owners may alter and drop them; serve as a role of its own"
        )


async def _target(connection: AsyncConnection) -> tuple[str, str, list[str]]:
    """The database, the schema the migrations created the tables in, and its tables."""
    database, schema = (
        await connection.execute(text("SELECT current_database(), current_schema()"))
    ).one()
    result = await connection.execute(
        text("""
        SELECT relname FROM pg_class
        WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p')
            AND NOT relispartition  -- reached through their parent only
        ORDER BY relname
        """)
    )
    tables = list(result.scalars())
    if not tables:
        raise PrivilegeError(f'schema "{schema}" has no tables yet: run auditql migrate first')
    return database, schema, tables


async def _verify(connection: AsyncConnection, role: str) -> None:
    """What the role may do now, whatever the source (these grants, PUBLIC, another role
    it belongs to), must be what it was given; otherwise the caller rolls back."""
    result = await connection.execute(
        text("""
        SELECT relname, relispartition, privilege,
            has_table_privilege(:role, pg_class.oid, privilege),
            -- a privilege on one column is enough to UPDATE that column
            privilege IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                AND has_any_column_privilege(:role, pg_class.oid, privilege)
        FROM pg_class, unnest(CAST(:privileges AS text[])) AS privilege
        WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p')
        ORDER BY relname, privilege
        """),
        {"role": role, "privileges": list(_TABLE_PRIVILEGES)},
    )
    for table, partition, privilege, on_table, on_a_column in result:
        expected = not partition and privilege in _privileges_for(table)
        if (on_table or on_a_column) and not expected:
            raise PrivilegeError(
                f'role "{role}" may still {privilege} {table}, which it must not: '
                "revoke that from PUBLIC or the roles it belongs to"
            )
        if expected and not on_table:
            # PostgreSQL only warns when a role grants what it holds without grant option.
            raise PrivilegeError(f'role "{role}" did not get {privilege} on {table}: {_NOT_OWNER}')
