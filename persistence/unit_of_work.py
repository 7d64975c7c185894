"""One transaction with one actor: the only way to write.

    async with UnitOfWork(database, AuditContext(actor_id=viewer.id)) as uow:
        post = await PostRepository(uow.session).add(Post(title=..., slug=...))

On leaving the block without an exception the transaction commits; on any exception it
rolls back, and database errors that stand for a broken rule (a duplicate, a stale
version, a dangling reference) are re-raised as the domain errors of
``persistence.errors``, chained to the original; those that mean "not now" (the
database is unreachable, a lock or statement timed out) as its transient errors, which
callers answer with "retry later", not as data. Repositories flush; only this commits.

On PostgreSQL a unit of work spends at most ``Database.lock_budget`` seconds in the
database, however many locks its statements wait for (:mod:`persistence.deadlines`).
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from persistence.audit import AUDIT_CONTEXT, WRITTEN, AuditContext
from persistence.chain import CHAINED
from persistence.deadlines import BUDGET, LockBudget
from persistence.engine import Committed, Database
from persistence.errors import InvalidReferenceError, translate
from persistence.held import commit_alone
from persistence.personal import PERSONAL, Sealer
from persistence.references import find_missing_reference, record_references

logger = logging.getLogger("auditql.unit_of_work")


class UnitOfWork:
    def __init__(self, database: Database, context: AuditContext) -> None:
        self._database = database
        self.context = context
        self._session: AsyncSession | None = None
        self.commit_position: int | None = None
        """With replicas, the WAL position at or past the end of this commit."""

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work has not started; use 'async with'")
        return self._session

    async def __aenter__(self) -> Self:
        sealer = Sealer(self._database.keys, self.context.actor_id, self.context.actor_key)
        self._session = self._database.writer(info={AUDIT_CONTEXT: self.context, PERSONAL: sealer})
        if self._database.engine.dialect.name == "sqlite":
            record_references(self._session.sync_session)
        await self._session.begin()
        if self._database.lock_budget is not None:
            budget = LockBudget(self._database.lock_budget)
            await self._session.connection(execution_options={BUDGET: budget})
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if exc is None:
                try:
                    if self._database.commits_alone:
                        await session.run_sync(_commit_alone)
                    await session.commit()
                except Exception as commit_exc:
                    await session.rollback()
                    await self._raise_translated(commit_exc)
                    raise
                await self._note_commit_position()
                if written := session.info.get(WRITTEN):
                    committed = Committed(frozenset(written), bool(session.info.get(CHAINED)))
                    for hook in self._database.commit_hooks:
                        hook(committed)
            else:
                await session.rollback()
                if isinstance(exc, Exception):
                    await self._raise_translated(exc)
        finally:
            await session.close()
            self._session = None

    async def _note_commit_position(self) -> None:
        """With replicas, where the commit ends in the WAL: the client's consistency
        token. The commit stands whatever happens here; without a position the client
        reads within the staleness bound, as without a token."""
        if self._database.replicas is None:
            return
        try:
            self.commit_position = await self._database.replicas.position(self._database.engine)
        except Exception:
            logger.warning("committed, but the WAL position is unknown", exc_info=True)

    async def _raise_translated(self, exc: Exception) -> None:
        error = translate(exc)
        if error is None or error is exc:
            return
        if isinstance(error, InvalidReferenceError) and error.field is None:
            error = InvalidReferenceError(await find_missing_reference(self.session))
        raise error from exc


def _commit_alone(session: Session) -> None:
    """A unit of work that is one new row and its entry: both as one statement, which
    leaves COMMIT nothing to do (:func:`persistence.held.commit_alone`)."""
    if not (session.new or session.deleted or session.dirty):
        commit_alone(session.connection())
