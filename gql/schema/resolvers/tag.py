"""Tags: readable by everyone, managed by superusers."""

from __future__ import annotations

import enum
from typing import Annotated
from uuid import UUID

import strawberry

from domain import tags
from gql.schema.commands import command_field
from gql.schema.context import Info
from gql.schema.ids import uuid_key
from gql.schema.mutations import perform
from gql.schema.resolvers.listing import list_connection
from gql.schema.types.connection import Connection
from gql.schema.types.error import (
    AlreadyExistsErrorType,
    ConflictErrorType,
    ForbiddenErrorType,
    NotFoundErrorType,
    ValidationErrorType,
)
from gql.schema.types.tag import TagType
from persistence.models import Tag, User
from persistence.repositories.tag import TagRepository
from persistence.unit_of_work import UnitOfWork


@strawberry.enum(description="How to order tags; the id breaks ties.")
class TagOrder(enum.Enum):
    NAME_ASC = ("name", False)
    NAME_DESC = ("name", True)
    CREATED_AT_ASC = ("created_at", False)
    CREATED_AT_DESC = ("created_at", True)


@strawberry.type
class Query:
    @strawberry.field(description="All tags, by name unless `orderBy` says otherwise.")
    async def tags(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        order_by: list[TagOrder] | None = None,
    ) -> Connection[TagType]:
        order = TagRepository.sort_keys([o.value for o in order_by or ()])
        return await list_connection(
            info, TagRepository, [], first=first, after=after, last=last, before=before,
            order_by=order,
        )  # fmt: skip


@strawberry.input
class CreateTagInput:
    name: str = strawberry.field(description="1-50 characters, unique ignoring case.")
    color: str = strawberry.field(default="#6b7280", description="#rrggbb")


@strawberry.input
class UpdateTagInput:
    id: strawberry.ID
    name: str | None = None
    color: str | None = None
    expected_version: int | None = None


@strawberry.input
class DeleteTagInput:
    id: strawberry.ID
    expected_version: int | None = None


@strawberry.type
class DeleteTagSuccess:
    deleted_id: strawberry.ID


DeleteTagResult = Annotated[
    DeleteTagSuccess | NotFoundErrorType | ConflictErrorType | ForbiddenErrorType,
    strawberry.union("DeleteTagResult"),
]


def _forget(info: Info, tag_id: UUID) -> None:
    info.context.loaders.by_id(Tag).clear(tag_id)
    info.context.loaders.tags_by_post_id.clear_all()


@strawberry.type
class Mutation:
    create_tag = command_field(
        tags.create_tag, TagType,
        ValidationErrorType, AlreadyExistsErrorType, ForbiddenErrorType,
        description="Create a tag (superusers).", input_type=CreateTagInput,
    )  # fmt: skip
    update_tag = command_field(
        tags.update_tag, TagType,
        ValidationErrorType, AlreadyExistsErrorType, NotFoundErrorType, ConflictErrorType,
        ForbiddenErrorType,
        description="Rename or recolor a tag (superusers).", input_type=UpdateTagInput,
    )  # fmt: skip

    @strawberry.mutation(description="Delete a tag and its links to posts (superusers).")
    async def delete_tag(self, info: Info, input: DeleteTagInput) -> DeleteTagResult | None:
        async def work(uow: UnitOfWork, viewer: User) -> DeleteTagSuccess:
            key = uuid_key(input.id, "Tag")
            await tags.delete_tag(uow, viewer, key, expected_version=input.expected_version)
            _forget(info, key)
            return DeleteTagSuccess(deleted_id=input.id)

        return await perform(info, work)
