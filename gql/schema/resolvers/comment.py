"""Comments: written on a visible post by any signed-in user, edited by their author."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain import comments
from gql.schema.context import Info
from gql.schema.ids import uuid_key
from gql.schema.lifecycle import delete_field, deleted_field, restore_field
from gql.schema.mutations import perform
from gql.schema.types.comment import CommentType
from gql.schema.types.error import (
    ConflictErrorType,
    ForbiddenErrorType,
    NotFoundErrorType,
    ValidationErrorType,
)
from persistence.models import Comment, User
from persistence.unit_of_work import UnitOfWork


@strawberry.input
class CreateCommentInput:
    post_id: strawberry.ID
    body: str = strawberry.field(description=f"1-{comments.MAX_BODY:,} characters.")


@strawberry.input
class UpdateCommentInput:
    id: strawberry.ID
    body: str
    expected_version: int | None = None


@strawberry.type
class CommentSuccess:
    comment: CommentType


CreateCommentResult = Annotated[
    CommentSuccess | ValidationErrorType | NotFoundErrorType,
    strawberry.union("CreateCommentResult"),
]
UpdateCommentResult = Annotated[
    CommentSuccess
    | ValidationErrorType
    | NotFoundErrorType
    | ConflictErrorType
    | ForbiddenErrorType,
    strawberry.union("UpdateCommentResult"),
]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Comment on a post you can see.")
    async def create_comment(self, info: Info, input: CreateCommentInput) -> CreateCommentResult:
        async def work(uow: UnitOfWork, viewer: User) -> CommentSuccess:
            comment = await comments.create_comment(
                uow, viewer, post_id=uuid_key(input.post_id, "Post", "postId"), body=input.body
            )
            return CommentSuccess(comment=comment)

        result = await perform(info, work)
        if isinstance(result, CommentSuccess):
            info.context.loaders.pages(Comment.post_id).clear_all()
        return result

    @strawberry.mutation(description="Change your comment (or any, as a superuser).")
    async def update_comment(self, info: Info, input: UpdateCommentInput) -> UpdateCommentResult:
        async def work(uow: UnitOfWork, viewer: User) -> CommentSuccess:
            comment = await comments.update_comment(
                uow, viewer, uuid_key(input.id, "Comment"), body=input.body,
                expected_version=input.expected_version,
            )  # fmt: skip
            return CommentSuccess(comment=comment)

        return await perform(info, work)

    delete_comment = delete_field(
        CommentType, description="Delete your comment (or any, as a superuser)."
    )
    restore_comment = restore_field(
        CommentType,
        CommentSuccess,
        description="Bring a deleted comment back (author or superuser).",
    )


@strawberry.type
class Query:
    deleted_comments = deleted_field(CommentType, whose="your own, or every one for superusers")
