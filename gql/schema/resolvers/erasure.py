"""Erasing a person (superusers): the rules are :mod:`domain.erasure`'s."""

from __future__ import annotations

from typing import Any

import strawberry

from domain import erasure
from gql.schema.commands import success_type, union
from gql.schema.context import Info
from gql.schema.ids import int_key
from gql.schema.mutations import perform
from gql.schema.types.error import ForbiddenErrorType, NotFoundErrorType, ValidationErrorType
from gql.schema.types.user import UserType
from persistence.models import User
from persistence.unit_of_work import UnitOfWork

UserSuccess = success_type(UserType)
EraseUserResult = union(
    "EraseUserResult", UserSuccess, ValidationErrorType, NotFoundErrorType, ForbiddenErrorType
)


@strawberry.input(name="EraseUserInput")
class EraseUserInput:
    user_id: strawberry.ID = strawberry.field(description="The User to erase.")


async def _erase_user(self: Any, info: Info, input: EraseUserInput) -> Any:
    user_id = int_key(input.user_id, "User", "userId")

    async def work(uow: UnitOfWork, viewer: User) -> Any:
        user = await erasure.erase_user(uow, viewer, user_id)
        loaders = info.context.loaders
        loaders.forget()
        loaders.by_id(User).prime(user.id, user)
        return UserSuccess(user=user)

    return await perform(info, work, fields={"user_id": "userId"})


# The union's members are known at run time only (as in gql.schema.commands).
_erase_user.__annotations__ = {
    "info": Info,
    "input": EraseUserInput,
    "return": EraseUserResult | None,
}


@strawberry.type
class Mutation:
    erase_user = strawberry.mutation(
        resolver=_erase_user,
        description="Erase a person (superusers; not yourself): their account is anonymised "
        "and deactivated, their tokens deleted, and their personal data in the audit trail "
        "(names, email, addresses, user agents) reads `[erased]` from then on. Their posts "
        "and comments stay, under the anonymised account. It cannot be undone.",
    )
