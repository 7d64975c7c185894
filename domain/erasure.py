"""Erasing a person: their personal data leaves the service, the audit trail stays whole.

``erase_user`` is one unit of work (the API's ``eraseUser`` and ``auditql erase-user``
run the same rules):

1. the user's row is anonymised: email ``erased-<id>@erased.invalid``, username
   ``erased-<id>``, no full name, no password, inactive; the change is recorded as an
   ``erase`` entry, its values sealed under the key that step 3 destroys;
2. the user's API tokens are deleted;
3. the user's data key is destroyed (:mod:`persistence.personal`): every personal value
   sealed under it, in entries about or by them, reads ``[erased]`` from then on.

Their posts, comments and other content stay, showing the anonymised author; the audit
entries stay as they were written, so the chain over them still verifies.
"""

from __future__ import annotations

from domain.rules import require_superuser
from persistence.audit import record_as
from persistence.errors import ValidationError
from persistence.models import ApiToken, User
from persistence.personal import sealer_of
from persistence.repositories.api_token import ApiTokenRepository
from persistence.repositories.user import UserRepository
from persistence.unit_of_work import UnitOfWork

ERASED_DOMAIN = "erased.invalid"
"""Where erased users' addresses point: ``.invalid`` never resolves (RFC 2606)."""


def erased_email(user_id: int) -> str:
    return f"erased-{user_id}@{ERASED_DOMAIN}"


def is_erased(user: User) -> bool:
    return user.email == erased_email(user.id)


async def erase_user(uow: UnitOfWork, actor: User | None, user_id: int) -> User:
    """Erase the user (superusers, or the system; not yourself): see the module."""
    require_superuser(actor)
    if actor is not None and actor.id == user_id:
        raise ValidationError("user_id", "You cannot erase yourself.")
    users = UserRepository(uow.session)
    user = await users.get_or_raise(user_id, for_update=True)
    if is_erased(user):
        raise ValidationError("user_id", "This user is erased already.")
    record_as(uow.session.sync_session, user, "erase")
    await users.update(user, {
        "email": erased_email(user.id), "username": f"erased-{user.id}", "full_name": "",
        "password_hash": None, "is_active": False,
    })  # fmt: skip
    tokens = ApiTokenRepository(uow.session)
    for token in await tokens.list(ApiToken.user_id == user.id):
        await tokens.delete(token)
    connection = await uow.session.connection()
    await connection.run_sync(lambda sync: sealer_of(uow.session).destroy(sync, user.id))
    return user
