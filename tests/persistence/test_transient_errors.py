"""Transient database faults are recognised for what they are, on real servers: a server
that refuses or never answers, a full server, a killed connection and an exhausted pool
are DatabaseUnavailableError; a lock or statement timeout (SQLite: its busy timeout) is
DatabaseTimeoutError. The engine names a failed connection attempt itself, within
``db_connect_timeout``; the unit of work raises the rest chained to the driver's
exception and writes nothing; read sessions let the driver's exception through, and
``transient_fault`` recognises it. A broken rule or a bug is never taken for one.

Client-side deadlines (persistence.deadlines): a unit of work's waits for locks never
add up past its budget; a server that does not answer in time is taken for
unreachable, and then costs later requests no wait until a probe finds it back. These
also pin what the deadlines read inside asyncpg: if asyncpg stopped reading a
connection's ``command_timeout`` per call, the lock budget test would fail."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from persistence import deadlines
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.errors import (
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    TransientError,
    transient_fault,
    translate,
)
from persistence.settings import DatabaseSettings
from persistence.unit_of_work import UnitOfWork
from tests.support.postgres import PostgresCluster
from tests.support.server import free_port

SYSTEM = AuditContext(actor_id=None)
_numbers = itertools.count()


def open_database(url: str, **settings: Any) -> Database:
    return Database.from_settings(DatabaseSettings(database_url=url, **settings))


async def read_one(database: Database, sql: str = "SELECT 1") -> object:
    async with database.reader() as session:
        return (await session.execute(text(sql))).scalar()


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections and then never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.fixture
def pg_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh PostgreSQL database with one row to fight over."""
    name = f"transient_{next(_numbers)}"
    postgres_cluster.psql(f'CREATE DATABASE "{name}"')
    postgres_cluster.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)", name
    )
    return postgres_cluster.url(name)


@contextlib.asynccontextmanager
async def held(url: str, sql: str) -> AsyncIterator[None]:
    """Another client's transaction that has run ``sql`` (taking its locks) until the
    block ends."""
    other = open_database(url)
    try:
        async with other.engine.connect() as connection, connection.begin():
            await connection.execute(text(sql))
            yield
    finally:
        await other.dispose()


async def test_a_server_that_refuses_connections_is_unavailable_at_once() -> None:
    database = open_database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as read:
        await read_one(database)
    with pytest.raises(DatabaseUnavailableError) as write:
        async with UnitOfWork(database, SYSTEM) as uow:
            await uow.session.execute(text("SELECT 1"))
    assert time.monotonic() - started < 2
    for raised in (read.value, write.value):
        assert isinstance(raised.__cause__, ConnectionRefusedError)
    await database.dispose()


async def test_a_server_that_never_answers_is_unavailable_after_the_connect_timeout() -> None:
    with silent_listener() as port:
        database = open_database(
            f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x", db_connect_timeout=0.5
        )
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError) as raised:
            await read_one(database)
        assert time.monotonic() - started < 3
        assert isinstance(raised.value.__cause__, TimeoutError)
        await database.dispose()


async def test_a_lock_timeout_in_a_unit_of_work_is_a_timeout_and_writes_nothing(
    pg_url: str,
) -> None:
    database = open_database(pg_url, db_lock_timeout_ms=200)
    async with held(pg_url, "SELECT * FROM t WHERE id = 1 FOR UPDATE"):
        with pytest.raises(DatabaseTimeoutError) as raised:
            async with UnitOfWork(database, SYSTEM) as uow:
                await uow.session.execute(text("UPDATE t SET v = 2 WHERE id = 1"))
    cause = raised.value.__cause__
    assert isinstance(cause, sa_exc.DBAPIError)
    assert cause.orig.sqlstate == "55P03"  # type: ignore[union-attr]
    assert await read_one(database, "SELECT v FROM t") == 1
    await database.dispose()


async def test_a_statement_timeout_in_a_read_is_recognised_as_a_timeout(pg_url: str) -> None:
    database = open_database(pg_url, db_statement_timeout_ms=200, db_lock_timeout_ms=0)
    async with held(pg_url, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE"):
        with pytest.raises(sa_exc.DBAPIError) as raised:
            await read_one(database, "SELECT v FROM t")
    assert isinstance(transient_fault(raised.value), DatabaseTimeoutError)
    assert await read_one(database, "SELECT v FROM t") == 1  # the lock is gone: it reads
    await database.dispose()


async def test_an_exhausted_pool_is_unavailable(pg_url: str) -> None:
    database = open_database(pg_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.2)
    assert database.read_engine is not None  # reads have a pool of their own: take it
    async with database.read_engine.connect() as taken:
        await taken.execute(text("SELECT 1"))
        with pytest.raises(sa_exc.TimeoutError) as raised:
            await read_one(database)
    assert isinstance(transient_fault(raised.value), DatabaseUnavailableError)
    assert await read_one(database) == 1
    await database.dispose()


async def test_a_connection_killed_mid_transaction_is_unavailable_and_replaced(
    pg_url: str, postgres_cluster: PostgresCluster
) -> None:
    database = open_database(pg_url)
    with pytest.raises(DatabaseUnavailableError) as raised:
        async with UnitOfWork(database, SYSTEM) as uow:
            await uow.session.execute(text("UPDATE t SET v = 2 WHERE id = 1"))
            pid = (await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar()
            postgres_cluster.psql(f"SELECT pg_terminate_backend({pid})")
            await uow.session.execute(text("SELECT 1"))
    assert isinstance(raised.value.__cause__, sa_exc.DBAPIError)
    assert await read_one(database, "SELECT v FROM t") == 1  # nothing written; new connection
    await database.dispose()


async def test_a_full_server_is_unavailable(pg_url: str, postgres_cluster: PostgresCluster) -> None:
    role = f"no_connections_{next(_numbers)}"
    postgres_cluster.psql(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    database = open_database(pg_url.replace("postgres@", f"{role}@"))
    with pytest.raises(sa_exc.DBAPIError) as raised:
        await read_one(database)
    assert raised.value.orig.sqlstate == "53300"  # type: ignore[union-attr]
    assert isinstance(transient_fault(raised.value), DatabaseUnavailableError)
    await database.dispose()
    postgres_cluster.psql(f"DROP ROLE {role}")


async def test_a_busy_sqlite_database_is_a_timeout(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}"
    database = open_database(url, db_lock_timeout_ms=100)
    async with UnitOfWork(database, SYSTEM) as uow:
        await uow.session.execute(text("CREATE TABLE t (v int)"))
    async with UnitOfWork(database, SYSTEM) as holder:
        await holder.session.execute(text("INSERT INTO t VALUES (1)"))  # holds the write lock
        with pytest.raises(DatabaseTimeoutError):
            async with UnitOfWork(database, SYSTEM) as uow:
                await uow.session.execute(text("INSERT INTO t VALUES (2)"))
    assert await read_one(database, "SELECT group_concat(v) FROM t") == "1"
    await database.dispose()


async def test_broken_rules_and_bugs_are_not_transient(pg_url: str) -> None:
    database = open_database(pg_url)
    failures: list[BaseException] = [RuntimeError("bug"), FileNotFoundError("x"), TimeoutError()]
    for sql in ("INSERT INTO t VALUES (1, 1)", "SELEC 1", "SELECT 1 / 0", "SELECT * FROM nope"):
        with pytest.raises(sa_exc.DBAPIError) as raised:
            await read_one(database, sql)
        failures.append(raised.value)
    for failure in failures:
        assert transient_fault(failure) is None, failure
        assert not isinstance(translate(failure), TransientError), failure
    await database.dispose()


async def two_waits(pg_url: str, database: Database) -> float:
    """Two waits of 1.5 s each (lock_timeout 2 s) in one unit of work with a budget of
    2.5 s: the second is cut short by the budget. How long the unit of work took."""
    assert database.lock_budget == 2.5
    async with database.engine.begin() as connection:
        await connection.execute(text("INSERT INTO t VALUES (2, 2)"))

    holding = asyncio.Event()

    async def release_after(seconds: float) -> None:
        async with held(pg_url, "SELECT * FROM t WHERE id = 1 FOR UPDATE"):
            holding.set()
            await asyncio.sleep(seconds)

    with pytest.raises(DatabaseTimeoutError) as raised:
        async with held(pg_url, "SELECT * FROM t WHERE id = 2 FOR UPDATE"):
            first = asyncio.create_task(release_after(1.5))
            await holding.wait()  # row 1 is held for 1.5 s from now, row 2 throughout
            started = time.monotonic()  # timed from here: holders connect at their pace
            async with UnitOfWork(database, SYSTEM) as uow:
                await uow.session.execute(text("UPDATE t SET v = 3 WHERE id = 1"))
                await first
                await uow.session.execute(text("UPDATE t SET v = 3 WHERE id = 2"))
    assert "budget" in str(raised.value)
    assert await read_one(database, "SELECT sum(v) FROM t") == 3  # nothing written
    return time.monotonic() - started


async def test_a_unit_of_work_spends_at_most_its_lock_budget_across_statements(
    pg_url: str,
) -> None:
    database = open_database(pg_url, db_lock_timeout_ms=2000)
    spent = await two_waits(pg_url, database)
    print(f"two waits cut short after {spent:.2f} s")
    assert 2.4 < spent < 3.0  # a second full wait would have ended at 3.5 s
    await database.dispose()


async def test_a_budget_is_spent_when_its_deadline_fires_early(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop's timer may fire before the budget's own clock reads it spent (uvloop reads
    its clock once per iteration, so by up to a millisecond): that is still the budget's
    deadline, not a silent server. Here the budget's clock runs 1% slow, so the second
    wait ends with ~10 ms of budget apparently left."""
    slow = types.SimpleNamespace(monotonic=lambda: time.monotonic() * 0.99)
    monkeypatch.setattr(deadlines, "time", slow)
    database = open_database(pg_url, db_lock_timeout_ms=2000)
    await two_waits(pg_url, database)
    assert await read_one(database) == 1  # the server was never taken for unreachable
    await database.dispose()


async def test_a_server_that_stops_answering_costs_one_deadline_then_none(pg_url: str) -> None:
    database = open_database(
        pg_url, db_statement_timeout_ms=0, db_lock_timeout_ms=0, db_command_timeout=0.5
    )
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError):
        await read_one(database, "SELECT pg_sleep(3)")  # the server's silence, simulated
    assert time.monotonic() - started < 1.5

    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError, match="has not answered"):
        await read_one(database)  # refused here, without a round trip
    assert time.monotonic() - started < 0.1

    await asyncio.sleep(1.1)  # the next probe's turn: it finds the server answering
    assert await read_one(database) == 1
    assert await read_one(database) == 1
    await database.dispose()
