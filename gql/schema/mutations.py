"""How every mutation runs: one unit of work, the viewer as actor, errors as data.

    return await perform(info, lambda uow, viewer: create(uow, viewer, input))

An anonymous request fails with UNAUTHENTICATED before anything touches the database.
A domain error (a duplicate, a stale version, a missing object, a forbidden action)
rolls the unit of work back and comes back as the matching member of the mutation's
result union; anything else propagates, and is masked and logged by the error policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gql.schema.context import Info
from gql.schema.types.error import as_error
from persistence.errors import DomainError
from persistence.models import User
from persistence.unit_of_work import UnitOfWork


async def perform(
    info: Info,
    work: Callable[[UnitOfWork, User], Awaitable[Any]],
    *,
    fields: dict[str, str] | None = None,
) -> Any:
    """The result of ``work``, or the `Error` its domain error stands for.

    Typed ``Any`` because each mutation's result union is checked by strawberry at run
    time (an error type missing from the union fails loudly); mypy cannot see it."""
    context = info.context
    viewer = context.require_viewer()
    try:
        async with context.unit_of_work() as uow:
            return await work(uow, viewer)
    except DomainError as exc:
        return as_error(exc, fields=fields)
