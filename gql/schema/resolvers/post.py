"""Posts: the list, lookups by id or slug, and the writes an author makes."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, TypeVar
from uuid import UUID

import strawberry

from domain import posts
from domain.posts import MAX_TAGS
from gql.errors import BadUserInputError
from gql.schema.commands import command_field
from gql.schema.context import Info
from gql.schema.ids import int_key, uuid_key
from gql.schema.lifecycle import (
    delete_field,
    deleted_field,
    restore_field,
)
from gql.schema.mutations import perform
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
from gql.schema.types.post import PostStatusEnum, PostType
from persistence.models import Post, User
from persistence.repositories.post import PostRepository
from persistence.unit_of_work import UnitOfWork

R = TypeVar("R")


@strawberry.enum(description="How to order posts; the id breaks ties.")
class PostOrder(enum.Enum):
    CREATED_AT_ASC = ("created_at", False)
    CREATED_AT_DESC = ("created_at", True)
    UPDATED_AT_ASC = ("updated_at", False)
    UPDATED_AT_DESC = ("updated_at", True)
    TITLE_ASC = ("title", False)
    TITLE_DESC = ("title", True)


@strawberry.input(description="Which posts to list; all conditions must hold.")
class PostFilter:
    status: list[PostStatusEnum] | None = None  # type: ignore[valid-type]
    author_id: strawberry.ID | None = strawberry.field(default=None, description="A User id.")
    tag_id: strawberry.ID | None = strawberry.field(default=None, description="A Tag id.")
    search: str | None = strawberry.field(
        default=None,
        description="Text in the title or body, matched literally (`%` and `_` are not "
        f"wildcards), any case; at most {MAX_FILTER_LENGTH} characters.",
    )
    created_after: datetime | None = None
    created_before: datetime | None = None


@strawberry.type
class Query:
    @strawberry.field(description="Posts you may see: published ones, your own, or all for "
                      "superusers. Newest first unless `orderBy` says otherwise.")  # fmt: skip
    async def posts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: PostFilter | None = None,
        order_by: list[PostOrder] | None = None,
    ) -> Connection[PostType]:
        f = filter or PostFilter()
        where = [
            posts.visible_to(info.context.viewer),
            *PostRepository.criteria(
                statuses=f.status or (),
                author_id=int_key(f.author_id, "User", "authorId") if f.author_id else None,
                tag_id=uuid_key(f.tag_id, "Tag", "tagId") if f.tag_id else None,
                search=filter_text(f.search, "filter.search"),
                created_after=f.created_after,
                created_before=f.created_before,
            ),
        ]
        order = PostRepository.sort_keys([o.value for o in order_by or ()])
        return await list_connection(
            info, PostRepository, where, first=first, after=after, last=last, before=before,
            order_by=order,
        )  # fmt: skip

    @strawberry.field(description="One post by `id` or by `slug` (give exactly one; a slug "
                      f"has at most {MAX_FILTER_LENGTH} characters).")  # fmt: skip
    async def post(
        self, info: Info, id: strawberry.ID | None = None, slug: str | None = None
    ) -> PostType | None:
        if (id is None) == (slug is None):
            raise BadUserInputError("Name the post by exactly one of its arguments.")
        if id is not None:
            post: Post | None = await info.context.loaders.by_id(Post).load(uuid_key(id, "Post"))
            return post
        slug = filter_text(slug, "slug")
        async with info.context.database.reader() as session:
            repository = PostRepository(session)
            return await repository.find_by_slug(slug or "", posts.visible_to(info.context.viewer))

    deleted_posts = deleted_field(PostType, whose="your own, or every one for superusers")


# -- inputs and results -----------------------------------------------------------------


@strawberry.input
class CreatePostInput:
    title: str = strawberry.field(description="1-200 characters.")
    body: str = ""
    slug: str | None = strawberry.field(
        default=None,
        description="Lower-case words joined by hyphens; made from the title if omitted.",
    )
    tag_ids: list[strawberry.ID] | None = None


@strawberry.input
class UpdatePostInput:
    id: strawberry.ID
    title: str | None = None
    body: str | None = None
    slug: str | None = None
    expected_version: int | None = strawberry.field(
        default=None, description="Fail with ConflictError unless the post is at this version."
    )


@strawberry.input(description="Names a post, optionally at the version you last read.")
class PostVersionInput:
    id: strawberry.ID
    expected_version: int | None = None


@strawberry.input
class SetPostTagsInput:
    post_id: strawberry.ID
    tag_ids: list[strawberry.ID] = strawberry.field(
        description=f"The post's tags from now on (at most {MAX_TAGS})."
    )
    expected_version: int | None = None


@strawberry.type
class PostSuccess:
    post: PostType


CreatePostResult = Annotated[
    PostSuccess | ValidationErrorType | AlreadyExistsErrorType | NotFoundErrorType,
    strawberry.union("CreatePostResult"),
]
SetPostTagsResult = Annotated[
    PostSuccess | ValidationErrorType | NotFoundErrorType | ConflictErrorType | ForbiddenErrorType,
    strawberry.union("SetPostTagsResult"),
]


# -- the writes ---------------------------------------------------------------------------


def _tag_keys(tag_ids: list[strawberry.ID]) -> list[UUID]:
    return [uuid_key(t, "Tag", "tagIds") for t in tag_ids]


def _refresh(info: Info, post: Post) -> None:
    loaders = info.context.loaders
    loaders.by_id(Post).clear(post.id).prime(post.id, post)
    loaders.tags_by_post_id.clear(post.id)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Write a draft post; you are its author.")
    async def create_post(self, info: Info, input: CreatePostInput) -> CreatePostResult | None:
        async def work(uow: UnitOfWork, viewer: User) -> PostSuccess:
            post = await posts.create_post(
                uow, viewer, title=input.title, body=input.body, slug=input.slug,
                tag_ids=_tag_keys(input.tag_ids or []),
            )  # fmt: skip
            return PostSuccess(post=post)

        return _done(info, await perform(info, work))

    update_post = command_field(
        posts.update_post, PostType,
        ValidationErrorType, AlreadyExistsErrorType, NotFoundErrorType, ConflictErrorType,
        ForbiddenErrorType,
        description="Change a post's title, body or slug (author or superuser).",
        input_type=UpdatePostInput, success=PostSuccess,
    )  # fmt: skip
    publish_post = command_field(
        posts.publish_post, PostType, NotFoundErrorType, ConflictErrorType, ForbiddenErrorType,
        description="Publish a post: it becomes visible to everyone.",
        input_type=PostVersionInput, success=PostSuccess,
    )  # fmt: skip
    delete_post = delete_field(PostType, input_type=PostVersionInput)
    restore_post = restore_field(
        PostType, PostSuccess, input_type=PostVersionInput,
        description="Bring a deleted post back (author or superuser).",
    )  # fmt: skip

    @strawberry.mutation(description="Replace a post's tags.")
    async def set_post_tags(self, info: Info, input: SetPostTagsInput) -> SetPostTagsResult | None:
        async def work(uow: UnitOfWork, viewer: User) -> PostSuccess:
            post = await posts.set_post_tags(
                uow, viewer, uuid_key(input.post_id, "Post"), _tag_keys(input.tag_ids),
                expected_version=input.expected_version,
            )  # fmt: skip
            return PostSuccess(post=post)

        return _done(info, await perform(info, work, fields={"post": "postId"}))


def _done(info: Info, result: R) -> R:
    """Serve the changed post from the loaders for the rest of this request."""
    if isinstance(result, PostSuccess):
        _refresh(info, result.post)
    return result
