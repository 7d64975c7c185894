"""Comments: written on a visible post by any signed-in user, edited by their author."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.rules import bounded_text, require_owner
from gql.schema.context import Info
from gql.schema.ids import uuid_key
from gql.schema.mutations import perform
from gql.schema.resolvers.node import NodeLookup
from gql.schema.types.comment import CommentType
from gql.schema.types.error import (
    ConflictErrorType,
    ForbiddenErrorType,
    NotFoundErrorType,
    ValidationErrorType,
)
from persistence.models import Comment, User
from persistence.repositories.comment import CommentRepository
from persistence.repositories.post import PostRepository
from persistence.unit_of_work import UnitOfWork

MAX_BODY = 10_000


@strawberry.input
class CreateCommentInput:
    post_id: strawberry.ID
    body: str = strawberry.field(description=f"1-{MAX_BODY:,} characters.")


@strawberry.input
class UpdateCommentInput:
    id: strawberry.ID
    body: str
    expected_version: int | None = None


@strawberry.input
class DeleteCommentInput:
    id: strawberry.ID
    expected_version: int | None = None


@strawberry.type
class CommentSuccess:
    comment: CommentType


@strawberry.type
class DeleteCommentSuccess:
    deleted_id: strawberry.ID


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
DeleteCommentResult = Annotated[
    DeleteCommentSuccess | NotFoundErrorType | ConflictErrorType | ForbiddenErrorType,
    strawberry.union("DeleteCommentResult"),
]


async def _editable(uow: UnitOfWork, viewer: User, id: strawberry.ID) -> Comment:
    """The comment, locked, if its post is visible to the viewer and they may edit it."""
    comment = await CommentRepository(uow.session).get_or_raise(
        uuid_key(id, "Comment"), for_update=True
    )
    posts = PostRepository(uow.session)
    await posts.get_or_raise(comment.post_id, posts.visible_to(viewer))
    require_owner(viewer, comment)
    return comment


def _body(value: str) -> str:
    return bounded_text(value, "body", max_length=MAX_BODY)


async def _comment(info: Info, id: strawberry.ID) -> Comment | None:
    return await info.context.loaders.comment_by_id.load(uuid_key(id, "Comment"))


NODES: dict[str, NodeLookup] = {"Comment": _comment}


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Comment on a post you can see.")
    async def create_comment(self, info: Info, input: CreateCommentInput) -> CreateCommentResult:
        async def work(uow: UnitOfWork, viewer: User) -> CommentSuccess:
            posts = PostRepository(uow.session)
            post = await posts.get_or_raise(
                uuid_key(input.post_id, "Post", "postId"), posts.visible_to(viewer)
            )
            comment = await CommentRepository(uow.session).add(
                Comment(post_id=post.id, body=_body(input.body))
            )
            return CommentSuccess(comment=comment)

        result = await perform(info, work)
        if isinstance(result, CommentSuccess):
            info.context.loaders.comments_by_post_id.clear_all()
        return result

    @strawberry.mutation(description="Change your comment (or any, as a superuser).")
    async def update_comment(self, info: Info, input: UpdateCommentInput) -> UpdateCommentResult:
        async def work(uow: UnitOfWork, viewer: User) -> CommentSuccess:
            comment = await _editable(uow, viewer, input.id)
            await CommentRepository(uow.session).update(
                comment, {"body": _body(input.body)}, expected_version=input.expected_version
            )
            return CommentSuccess(comment=comment)

        return await perform(info, work)

    @strawberry.mutation(description="Delete your comment (or any, as a superuser).")
    async def delete_comment(self, info: Info, input: DeleteCommentInput) -> DeleteCommentResult:
        async def work(uow: UnitOfWork, viewer: User) -> DeleteCommentSuccess:
            comment = await _editable(uow, viewer, input.id)
            await CommentRepository(uow.session).soft_delete(
                comment, expected_version=input.expected_version
            )
            return DeleteCommentSuccess(deleted_id=input.id)

        result = await perform(info, work)
        if isinstance(result, DeleteCommentSuccess):
            info.context.loaders.comments_by_post_id.clear_all()
        return result
