"""What ``auditql erase-user`` and ``auditql rotate-audit-keys`` do."""

from __future__ import annotations

from domain import erasure
from gql.cli.database import opened
from gql.settings import Settings
from persistence import personal
from persistence.audit import AuditContext
from persistence.unit_of_work import UnitOfWork


async def erase_user(settings: Settings, user_id: int) -> str:
    """Erase the user as the system, by the API's rules; the anonymised username."""
    async with opened(settings) as database, UnitOfWork(database, AuditContext(None)) as uow:
        user = await erasure.erase_user(uow, None, user_id)
        return user.username


async def rotate_keys(settings: Settings) -> int:
    """Re-wrap every data key under the first KEK, a batch per transaction; how many."""
    total = 0
    async with opened(settings) as database:
        assert database.keys is not None  # Database.from_settings always has them
        while True:
            # A transaction of its own, with the actor-less context of the system: the
            # keys are not audited rows, and nothing else is written.
            async with UnitOfWork(database, AuditContext(None)) as uow:
                done = await personal.rotate(uow.session, database.keys)
            if not done:
                return total
            total += done
