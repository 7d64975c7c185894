"""Comments: written on a visible post by any signed-in user, edited by their author."""

from __future__ import annotations

import strawberry

from domain import comments
from gql.schema.commands import command_field
from gql.schema.lifecycle import delete_field, deleted_field, restore_field
from gql.schema.types.comment import CommentType
from gql.schema.types.error import (
    ConflictErrorType,
    ForbiddenErrorType,
    NotFoundErrorType,
    ValidationErrorType,
)


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
class Mutation:
    create_comment = command_field(
        comments.create_comment, CommentType, ValidationErrorType, NotFoundErrorType,
        description="Comment on a post you can see.", input_type=CreateCommentInput,
    )  # fmt: skip
    update_comment = command_field(
        comments.update_comment, CommentType,
        ValidationErrorType, NotFoundErrorType, ConflictErrorType, ForbiddenErrorType,
        description="Change your comment (or any, as a superuser).",
        input_type=UpdateCommentInput,
    )  # fmt: skip
    delete_comment = delete_field(
        CommentType, description="Delete your comment (or any, as a superuser)."
    )
    restore_comment = restore_field(
        CommentType, description="Bring a deleted comment back (author or superuser)."
    )


@strawberry.type
class Query:
    deleted_comments = deleted_field(CommentType, whose="your own, or every one for superusers")
