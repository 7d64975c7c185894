"""Engines and session factories, built from settings when the application starts.

Nothing here runs at import time. Two kinds of session come out of a ``Database``:

- ``reader()``: a short-lived session in autocommit mode for query resolvers and
  dataloader batches. Each concurrently running resolver gets its own, because an
  AsyncSession must never be shared between tasks; autocommit spares every batch a
  BEGIN/ROLLBACK round trip. Its connections come from a pool of their own, read-only
  in the database itself.
- ``writer()``: the session a unit of work owns, in one transaction. On SQLite its
  transaction starts with BEGIN IMMEDIATE, taking the write lock up front, so two
  writers queue instead of failing with "database is locked" half-way through.

On PostgreSQL every wait has a bound from the settings: a new connection
``db_connect_timeout``, a free pooled one ``db_pool_timeout``, each wait for a lock
``db_lock_timeout_ms``, a whole statement ``db_statement_timeout_ms``, and every round
trip ``db_command_timeout`` on this side, should the server stop answering; a unit of
work spends at most its lock budget in the database (:mod:`persistence.deadlines`). Pooled
connections the server closed (while it was down) are replaced at checkout instead of
failing the first requests after it is back.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from persistence import pgbouncer
from persistence.audit import AuditingSession, ReadOnlySession
from persistence.deadlines import CLIENT_CHECK_INTERVAL_MS, Reachability, apply_deadlines
from persistence.errors import DatabaseUnavailableError
from persistence.held import holds
from persistence.keyring import KeyRing, key_ring
from persistence.replicas import Replica, ReplicaSet, replica_name, replica_set_factory
from persistence.settings import DatabaseSettings
from persistence.write_guard import guard_writes

SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""What ``Database.reader`` is: ``async with database.reader() as session``."""

_WRITE_OPTION = "auditql_writer"
# A failing statement's bound values are user input, emails, hashes: they stay out of
# exception messages, and so out of logged tracebacks (the SQL itself is kept).
_ENGINE_OPTIONS: dict[str, Any] = {"hide_parameters": True}


def create_engine(
    settings: DatabaseSettings,
    *,
    read_only: bool = False,
    reachability: Reachability | None = None,
    name: str = "auditql",
) -> AsyncEngine:
    """An engine on the settings' database. A ``read_only`` one's connections cannot
    write, whatever is sent on them: PostgreSQL makes every transaction read-only
    (``default_transaction_read_only``; behind PgBouncer, each transaction says so
    itself: :mod:`persistence.pgbouncer`), SQLite refuses changes (``query_only``). Any
    other refuses writes to a model's table outside the audit (:mod:`persistence.write_guard`).
    Engines on one server share its ``reachability`` (:mod:`persistence.deadlines`).
    ``name`` is the ``application_name`` its PostgreSQL connections show in
    ``pg_stat_activity``: the requests' engines use the default, background work its own."""
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            **_ENGINE_OPTIONS,
            # How long a writer waits for SQLite's write lock before giving up.
            connect_args={"timeout": settings.db_lock_timeout_ms / 1000 or 5.0},
        )
        _configure_sqlite(engine, read_only=read_only)
    else:
        engine = _create_postgresql_engine(
            settings, read_only, reachability or Reachability(), name
        )
    if not read_only:
        guard_writes(engine)
        if not settings.is_sqlite:
            holds(engine)
    return engine


def _create_postgresql_engine(
    settings: DatabaseSettings, read_only: bool, reachability: Reachability, name: str
) -> AsyncEngine:
    server_settings = {
        "application_name": name,
        # A statement whose client went away (its deadline passed) stops within this.
        "client_connection_check_interval": str(CLIENT_CHECK_INTERVAL_MS),
    }
    if read_only:
        server_settings["default_transaction_read_only"] = "on"
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    if settings.db_lock_timeout_ms:
        server_settings["lock_timeout"] = str(settings.db_lock_timeout_ms)
    connect_args: dict[str, Any] = {
        # asyncpg's timeout bounds the whole attempt: TCP connect, TLS and start-up.
        "timeout": settings.db_connect_timeout,
        "command_timeout": settings.command_timeout,
        "server_settings": server_settings,
    }
    if settings.db_pgbouncer:  # the same settings, for each transaction instead
        connect_args.update(pgbouncer.connect_args(server_settings))
    engine = create_async_engine(
        settings.database_url,
        **_ENGINE_OPTIONS,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        connect_args=connect_args,
    )
    if settings.db_pgbouncer:
        pgbouncer.run_in_transactions(engine)
    apply_deadlines(engine, settings.command_timeout, reachability)
    _name_connect_failures(engine, reachability)
    _skip_closed_connections(engine)
    return engine


def _skip_closed_connections(engine: AsyncEngine) -> None:
    """A pooled connection the server closed (a restart, an administrator, an idle
    timeout) is replaced when it is checked out, before any request uses it.

    asyncpg learns that its socket closed as soon as the server closes it, so asking it
    costs nothing. SQLAlchemy's pool_pre_ping would ask the server instead: on asyncpg
    a BEGIN, a ``;`` and a ROLLBACK, three round trips on every checkout, which for a
    read made of three batches was six statements of chatter around three SELECTs."""

    # Ref: https://docs.sqlalchemy.org/en/20/core/pooling.html#custom-legacy-pessimistic-ping
    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        if record.driver_connection is not None and record.driver_connection.is_closed():
            # The pool discards the connection and checks out another (or a new one).
            raise DisconnectionError("the server closed this pooled connection")


def _name_connect_failures(engine: AsyncEngine, reachability: Reachability) -> None:
    """asyncpg lets the socket errors of a connection attempt through unwrapped (refused,
    unreachable, and its own connect timeout as TimeoutError, an OSError): here, where
    they are known to come from connecting, they become DatabaseUnavailableError. While
    the server is silent (it let an attempt time out), only the probe tries to connect."""

    # Ref: https://docs.sqlalchemy.org/en/20/core/events.html#sqlalchemy.events.DialectEvents.do_connect
    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(
        dialect: Dialect, _record: ConnectionPoolEntry, cargs: list[Any], cparams: dict[str, Any]
    ) -> Any:
        reachability.check()
        try:
            connection = dialect.connect(*cargs, **cparams)
        except OSError as exc:
            if isinstance(exc, TimeoutError):  # silent, not refusing: stop waiting on it
                reachability.failed()
            raise DatabaseUnavailableError(
                f"cannot connect to the database ({type(exc).__name__}: {exc})"
            ) from exc
        reachability.answered()
        return connection


def _configure_sqlite(engine: AsyncEngine, *, read_only: bool) -> None:
    pragmas = ["foreign_keys = ON", "journal_mode = WAL", "synchronous = NORMAL"]
    if read_only:
        pragmas.append("query_only = ON")  # last: setting WAL on a new file writes

    # Ref: https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl-asyncio-version
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of the driver's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_WRITE_OPTION) else "BEGIN")


@dataclass(frozen=True, slots=True)
class Committed:
    """What a unit of work that wrote rows committed."""

    tables: frozenset[str]
    """The tables it wrote rows of (audited or not: a token's ``last_used_at`` too)."""
    chained: bool
    """Whether it chained its entries itself, before COMMIT (SQLite,
    :func:`persistence.chain.append_pending`): they are in the trail already."""


@dataclass(frozen=True)
class Database:
    """The engines and the two session factories every request draws from: units of
    work write through ``engine``; reads go through ``read_engine``, a pool of its own
    whose connections cannot write."""

    engine: AsyncEngine
    reader: SessionFactory
    writer: async_sessionmaker[AsyncSession]
    read_engine: AsyncEngine | None = None
    lock_budget: float | None = None
    """Seconds each unit of work may spend in the database (None: unbounded)."""
    replicas: ReplicaSet | None = None
    """Streaming replicas that reads may use (:mod:`persistence.replicas`)."""
    keys: KeyRing | None = None
    """The KEKs personal audit values are sealed under (:mod:`persistence.keyring`);
    a unit of work that has a value to seal fails without them."""
    commits_alone: bool = False
    """Whether a unit of work that is one new row and its audit entry commits them as
    one statement, without BEGIN and COMMIT (:func:`persistence.held.commit_alone`):
    PostgreSQL, not behind PgBouncer."""
    commit_hooks: list[Callable[[Committed], None]] = field(default_factory=list)
    """Called after each commit of a unit of work that wrote rows, with what it wrote:
    live updates wake on it, cached tokens are forgotten on it."""

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> Database:
        reachability = Reachability()
        engine = create_engine(settings, reachability=reachability)
        read_engine = create_engine(settings, read_only=True, reachability=reachability)
        return cls(
            engine=engine,
            read_engine=read_engine,
            reader=_read_sessions(read_engine),
            writer=async_sessionmaker(
                writing(engine),
                sync_session_class=AuditingSession,
                expire_on_commit=False,
            ),
            lock_budget=None if settings.is_sqlite else settings.lock_budget,  # SQLite: one wait
            replicas=replica_set_factory(
                settings.database_replica_urls,
                lambda url: _replica(settings, url),
                read_engine,
                max_lag=settings.replica_max_lag,
                wait=settings.replica_wait_ms / 1000,
            ),
            keys=key_ring(settings.audit_keks.get_secret_value(), settings.audit_key_path),
            commits_alone=not settings.is_sqlite and not settings.db_pgbouncer,
        )

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        own = (self.engine,) if self.read_engine is None else (self.engine, self.read_engine)
        return own + tuple(r.engine for r in (self.replicas.replicas if self.replicas else []))

    def connections_in_use(self) -> int:
        """Connections checked out of every pool."""
        return sum(engine.pool.checkedout() for engine in self.engines)  # type: ignore[attr-defined]

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()


def writing(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for write transactions: on SQLite they take the write lock at BEGIN."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def _read_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Short-lived read sessions on ``engine``: autocommit, read-only."""
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        sync_session_class=ReadOnlySession,
        expire_on_commit=False,
        autoflush=False,
    )


def _replica(settings: DatabaseSettings, url: str) -> Replica:
    """A replica's read pool: read-only, with the primary's bounds and its own
    reachability (a silent replica must not stop the primary's requests)."""
    engine = create_engine(
        settings.model_copy(update={"database_url": url}), read_only=True,
        reachability=Reachability(),
    )  # fmt: skip
    return Replica(replica_name(url), engine, _read_sessions(engine))
