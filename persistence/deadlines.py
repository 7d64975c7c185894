"""Client-side deadlines on every round trip to PostgreSQL.

The server's own timeouts (``statement_timeout``, ``lock_timeout``) need a server that
answers. One that stops answering (a frozen host, a network partition: the connection
stays open and nothing comes back) would hold a request for as long as the kernel keeps
the socket, so every round trip also has a deadline on this side:

- ``db_command_timeout``: each statement, BEGIN, COMMIT and ROLLBACK (asyncpg's
  ``command_timeout``). It exceeds ``statement_timeout``, so a live server cancels a
  slow statement itself first (``TIMEOUT``); past it the server is taken for gone
  (``SERVICE_UNAVAILABLE``).
- a unit of work's *lock budget*: PostgreSQL's ``lock_timeout`` bounds each wait for a
  lock, but a statement may wait twice (for a row's tuple lock, then for the
  transaction holding the row) and a unit of work runs several statements, so waits
  would add up. A :class:`LockBudget` holds what is left of the unit of work's time in
  the database; each statement may take at most that.

A round trip past its deadline drops its connection at once (whatever the server was
doing, the connection's state is unknown); the server notices within
``client_connection_check_interval`` and ends the abandoned statement, releasing its
place in any lock queue.

Once a server has failed to answer (a deadline passed, a connection attempt timed out),
waiting the whole deadline again for every request would only queue them: until it
answers again, round trips and connection attempts fail at once, but for one *probe*
a second, which goes through as usual (:class:`Reachability`, a circuit breaker).
"""

from __future__ import annotations

import time
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.errors import DatabaseTimeoutError, DatabaseUnavailableError

BUDGET: Final = "auditql_lock_budget"
"""The execution option carrying a unit of work's :class:`LockBudget`."""

CLIENT_CHECK_INTERVAL_MS = 1000
"""How often the server checks that a client running a statement is still there."""


class LockBudget:
    """What is left of a unit of work's time in the database, in seconds; ``binding``
    whether that, not ``db_command_timeout``, is the running round trip's deadline."""

    __slots__ = ("binding", "left", "started")

    def __init__(self, seconds: float) -> None:
        self.left = seconds
        self.started: float | None = None
        self.binding = False


class Reachability:
    """Whether the server answered lately, and when the next probe may try it."""

    PROBE_INTERVAL = 1.0

    __slots__ = ("_next_probe", "unreachable_since")

    def __init__(self) -> None:
        self.unreachable_since: float | None = None
        self._next_probe = 0.0

    def failed(self) -> None:
        """It did not answer in time."""
        now = time.monotonic()
        if self.unreachable_since is None:
            self.unreachable_since = now
            self._next_probe = now + self.PROBE_INTERVAL

    def answered(self) -> None:
        self.unreachable_since = None

    def check(self) -> None:
        """Raise DatabaseUnavailableError, without a round trip, while the server is
        unreachable and this is not the probe's turn."""
        if self.unreachable_since is None:
            return
        now = time.monotonic()
        if now >= self._next_probe:
            self._next_probe = now + self.PROBE_INTERVAL
            return
        down = now - self.unreachable_since
        raise DatabaseUnavailableError(f"the database has not answered for {down:.1f} s")


def apply_deadlines(
    engine: AsyncEngine, command_timeout: float, reachability: Reachability
) -> None:
    """Give every round trip on ``engine`` (asyncpg) its deadline, and stop sending any
    while its server is unreachable; see the module."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _arm(conn: Connection, _c: Any, _s: Any, _p: Any, context: Any, _m: Any) -> None:
        reachability.check()
        budget = _budget(context)
        if budget is None:
            return
        if budget.left <= 0:
            raise DatabaseTimeoutError("the unit of work spent its lock budget")
        budget.binding = budget.left < command_timeout
        _set_timeout(conn, min(command_timeout, budget.left))
        budget.started = time.monotonic()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _disarm(conn: Connection, _c: Any, _s: Any, _p: Any, context: Any, _m: Any) -> None:
        reachability.answered()
        _spend(conn, _budget(context), command_timeout)

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(ctx: ExceptionContext) -> None:
        budget = _budget(ctx.execution_context)
        if ctx.connection is not None:
            _spend(ctx.connection, budget, command_timeout)
        if not isinstance(ctx.original_exception, TimeoutError):
            return
        # No answer in time: the connection's state is unknown, so it is dropped now
        # rather than closed politely (which would wait on the same silent server).
        ctx.is_disconnect = True
        if ctx.connection is not None and not ctx.connection.invalidated:
            driver = ctx.connection.connection.driver_connection
            if driver is not None:
                driver.terminate()
        if budget is not None and budget.binding:
            # The budget's deadline, not the server's silence. Its timer may fire a
            # little before the budget reads spent (uvloop's clock is read once per
            # loop iteration), so what passed is not measured again here.
            budget.left = 0
            raise DatabaseTimeoutError("the unit of work spent its lock budget") from None
        reachability.failed()
        raise DatabaseUnavailableError(
            f"the database did not answer within {command_timeout} s"
        ) from None


def _budget(context: Any) -> LockBudget | None:
    if context is None:
        return None
    budget = context.execution_options.get(BUDGET)
    return budget if isinstance(budget, LockBudget) else None


def _spend(conn: Connection, budget: LockBudget | None, command_timeout: float) -> None:
    if budget is None or budget.started is None:
        return
    budget.left -= time.monotonic() - budget.started
    budget.started = None
    _set_timeout(conn, command_timeout)


def _set_timeout(conn: Connection, seconds: float) -> None:
    """The timeout of the connection's next round trips. asyncpg reads it from its
    connection's configuration on every call; it has no other per-call knob that
    SQLAlchemy would pass. Ref: asyncpg/protocol/protocol.pyx ``_get_timeout_impl``
    (asyncpg is pinned; tests/persistence/test_transient_errors.py fails if this stops
    working)."""
    driver = conn.connection.driver_connection
    if driver is not None and not driver.is_closed():
        driver._config = driver._config._replace(command_timeout=seconds)
