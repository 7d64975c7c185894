"""Users: the viewer, the list, and user management (superusers; yourself in part)."""

from __future__ import annotations

import enum

import strawberry

from domain import users
from gql.schema.commands import command_field
from gql.schema.context import Info
from gql.schema.resolvers.listing import list_connection
from gql.schema.scalars import MAX_FILTER_LENGTH, filter_text
from gql.schema.types.connection import Connection
from gql.schema.types.error import (
    AlreadyExistsErrorType,
    ConflictErrorType,
    ForbiddenErrorType,
    NotFoundErrorType,
    ValidationErrorType,
)
from gql.schema.types.user import UserType
from persistence.models import User
from persistence.repositories.text import contains
from persistence.repositories.user import UserRepository


@strawberry.enum(description="How to order users; the id breaks ties.")
class UserOrder(enum.Enum):
    USERNAME_ASC = ("username", False)
    USERNAME_DESC = ("username", True)
    CREATED_AT_ASC = ("created_at", False)
    CREATED_AT_DESC = ("created_at", True)


@strawberry.input
class UserFilter:
    search: str | None = strawberry.field(
        default=None,
        description="Text in the username or full name, matched literally, any case; at "
        f"most {MAX_FILTER_LENGTH} characters.",
    )
    username: str | None = strawberry.field(
        default=None, description="Exactly this username, any case."
    )
    is_superuser: bool | None = strawberry.field(
        default=None, description="Superusers only (true) or everyone else (false)."
    )
    is_active: bool | None = strawberry.field(
        default=None, description="Superusers only; others always see active users."
    )


@strawberry.type
class Query:
    @strawberry.field(description="You, when signed in; null otherwise.")
    def viewer(self, info: Info) -> UserType | None:
        return info.context.viewer

    @strawberry.field(description="Users, by username unless `orderBy` says otherwise.")
    async def users(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: UserFilter | None = None,
        order_by: list[UserOrder] | None = None,
    ) -> Connection[UserType]:
        viewer, f = info.context.viewer, filter or UserFilter()
        superuser = viewer is not None and viewer.is_superuser
        where = []
        if search := filter_text(f.search, "filter.search"):
            where.append(contains([User.username, User.full_name], search))
        if f.username is not None:
            where.append(UserRepository.named(filter_text(f.username, "filter.username")))
        if f.is_superuser is not None:
            where.append(User.is_superuser.is_(f.is_superuser))
        if not superuser:
            where.append(User.is_active.is_(True))
        elif f.is_active is not None:
            where.append(User.is_active.is_(f.is_active))
        order = UserRepository.sort_keys([o.value for o in order_by or ()])
        return await list_connection(
            info, UserRepository, where, first=first, after=after, last=last, before=before,
            order_by=order,
        )  # fmt: skip


@strawberry.input
class CreateUserInput:
    email: str
    username: str = strawberry.field(description="1-50 characters, unique ignoring case.")
    full_name: str = ""
    password: str | None = strawberry.field(
        default=None,
        description=f"At least {users.MIN_PASSWORD} characters; none means no login.",
    )
    is_superuser: bool = False


@strawberry.input
class UpdateUserInput:
    id: strawberry.ID
    email: str | None = strawberry.field(default=None, description="Superusers only.")
    username: str | None = strawberry.field(default=None, description="Superusers only.")
    full_name: str | None = None
    password: str | None = None
    is_superuser: bool | None = strawberry.field(default=None, description="Superusers only.")
    expected_version: int | None = None


@strawberry.input
class DeactivateUserInput:
    id: strawberry.ID
    expected_version: int | None = None


@strawberry.type
class Mutation:
    create_user = command_field(
        users.create_user, UserType, ValidationErrorType, AlreadyExistsErrorType,
        ForbiddenErrorType,
        description="Create a user (superusers).", input_type=CreateUserInput,
    )  # fmt: skip
    update_user = command_field(
        users.update_user, UserType,
        ValidationErrorType, AlreadyExistsErrorType, NotFoundErrorType, ConflictErrorType,
        ForbiddenErrorType,
        description="Change a user: superusers change anything; you may change your own full "
        "name and password.",
        input_type=UpdateUserInput, fields={"password_hash": "password"},
    )  # fmt: skip
    deactivate_user = command_field(
        users.deactivate_user, UserType,
        ValidationErrorType, NotFoundErrorType, ConflictErrorType, ForbiddenErrorType,
        description="Stop a user from signing in; their tokens stop working at once "
        "(superusers; not yourself).",
        input_type=DeactivateUserInput,
    )  # fmt: skip
