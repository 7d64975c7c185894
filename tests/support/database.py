"""Binding the application's session factories to one connection in a transaction.

SQLAlchemy's "joining a session into an external transaction" recipe: each session
works in a SAVEPOINT of the test's transaction, which the fixture rolls back.
Ref: https://docs.sqlalchemy.org/en/20/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from persistence.audit import AuditingSession, ReadOnlySession
from persistence.engine import Database
from persistence.keyring import key_ring
from persistence.settings import DatabaseSettings


def database_in_transaction(connection: AsyncConnection) -> Database:
    settings = DatabaseSettings()

    def factory(session_class: type) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(
            connection,
            sync_session_class=session_class,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        )

    return Database(
        engine=connection.engine,
        reader=factory(ReadOnlySession),
        writer=factory(AuditingSession),
        keys=key_ring(settings.audit_keks.get_secret_value(), settings.audit_key_path),
    )
