"""Engines behind PgBouncer in transaction pooling mode (``db_pgbouncer``).

Such a pooler lends a client connection one of its server connections for one
transaction at a time, to one client after another. Nothing that lives in a server
session can be relied on, so an engine behind it keeps none:

- Settings: PgBouncer refuses start-up parameters it does not track itself (it tracks
  ``application_name`` and sets it on each server connection it lends). The others a
  direct connection sets at connect (``statement_timeout``, ``lock_timeout``,
  ``client_connection_check_interval``, the read pool's read-only default) are sent
  with every transaction instead, as ``SET LOCAL`` in its BEGIN's round trip.
- Prepared statements: PgBouncer 1.18 knows nothing of them. A statement prepared by
  name on one server connection would be missing from the next, two clients' names
  would collide on a shared one, and names nobody closes would pile up. Every statement
  is PostgreSQL's unnamed one instead, parsed again in the round trip of its Bind
  (asyncpg does so when its statement cache is off): nothing is left on a server
  connection to leak, and nothing is looked up that another client may have replaced.
- Autocommit: a statement outside a transaction would run without those settings, on
  whatever server connection is free. An engine behind PgBouncer ignores
  ``isolation_level="AUTOCOMMIT"``: read sessions run in (read-only) transactions too.

What it costs, in round trips: every statement takes two (a Parse to learn its
parameter and column types, then Parse, Bind and Execute), as on a direct connection
the first time it runs there; after that, a direct connection's statement cache takes
one. A unit of work costs nothing more (the SET LOCALs ride with its BEGIN); a read
session two more, BEGIN and ROLLBACK, than the autocommit it has on a direct
connection. So a read of one statement takes 4 round trips instead of 1, one of three
statements 8 instead of 3, and a unit of work that creates a post 6 instead of 4.
The whole mode works on a direct connection too (nothing in it needs PgBouncer).

Ref: https://docs.sqlalchemy.org/en/21/dialects/postgresql.html#prepared-statement-name-with-pgbouncer
Ref: https://www.pgbouncer.org/features.html (what transaction pooling breaks)
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

_TRACKED = frozenset({"application_name"})
"""Start-up parameters PgBouncer keeps per client and sets on the server connection it
lends (with the encoding, date style and time zone, which auditql leaves alone).
Ref: https://www.pgbouncer.org/config.html#ignore_startup_parameters"""

# A session's default for its transactions, and the same setting for one transaction.
_FOR_ONE_TRANSACTION = {"default_transaction_read_only": "transaction_read_only"}


def connect_args(server_settings: dict[str, str]) -> dict[str, Any]:
    """The connection arguments (asyncpg's, and the SQLAlchemy dialect's) that replace
    ``server_settings``, what a direct connection sets at connect."""
    per_transaction = {
        _FOR_ONE_TRANSACTION.get(name, name): value
        for name, value in server_settings.items()
        if name not in _TRACKED
    }
    return {
        "server_settings": {k: v for k, v in server_settings.items() if k in _TRACKED},
        # asyncpg: no statement cache, so no statement named. SQLAlchemy prepares every
        # statement (to learn its columns), and asyncpg then prepares the unnamed one,
        # which it never closes and parses again with its Bind (asyncpg is pinned;
        # tests/gql/test_pgbouncer.py fails if a name reaches a server connection).
        # Not the unique names of SQLAlchemy's prepared_statement_name_func: asyncpg
        # closes each later, on whichever server connection it has by then, and they
        # pile up on the ones that have them.
        "statement_cache_size": 0,
        # SQLAlchemy's own cache of asyncpg statements, per client connection.
        "prepared_statement_cache_size": 0,
        "connection_class": _setting_at_begin(per_transaction),
    }


def run_in_transactions(engine: AsyncEngine) -> None:
    """``engine`` drops ``isolation_level="AUTOCOMMIT"`` from the execution options it
    or its connections are given, so that every statement runs in a transaction that
    carries the settings."""

    # Ref: https://docs.sqlalchemy.org/en/21/core/events.html#sqlalchemy.events.ConnectionEvents.set_engine_execution_options
    # ("opts ... may be modified in place to affect the ultimate options which take effect")
    @event.listens_for(engine.sync_engine, "set_engine_execution_options")
    def _engine_options(_engine: Engine, opts: dict[str, Any]) -> None:
        _drop_autocommit(opts)

    @event.listens_for(engine.sync_engine, "set_connection_execution_options")
    def _connection_options(_connection: Connection, opts: dict[str, Any]) -> None:
        _drop_autocommit(opts)


def _drop_autocommit(opts: dict[str, Any]) -> None:
    if opts.get("isolation_level") == "AUTOCOMMIT":
        del opts["isolation_level"]


def _setting_at_begin(settings: dict[str, str]) -> type[asyncpg.Connection]:
    """An asyncpg connection class that sends ``settings`` as SET LOCAL with each BEGIN.

    The SQLAlchemy dialect starts a transaction with asyncpg's ``Transaction.start``,
    which sends its BEGIN through ``Connection.execute`` without arguments: the simple
    query protocol, which carries several statements in one round trip (asyncpg is
    pinned; tests/gql/test_pgbouncer.py fails if the settings stop arriving)."""
    set_local = "".join(f" SET LOCAL {name} = {_literal(v)};" for name, v in settings.items())

    class SettingAtBegin(asyncpg.Connection):
        __slots__ = ()

        async def execute(
            self,
            query: str,
            *args: object,
            timeout: float | None = None,  # noqa: ASYNC109 - asyncpg's signature
        ) -> str:
            if not args and query.startswith("BEGIN"):
                query = f"{query.rstrip().removesuffix(';')};{set_local}"
            return await super().execute(query, *args, timeout=timeout)

    return SettingAtBegin


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
