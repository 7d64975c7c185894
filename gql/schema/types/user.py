from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from gql.schema.context import Info
from gql.schema.entities import entity
from gql.schema.loaders import PageKey
from gql.schema.types.audited import Audited
from gql.schema.types.connection import DEFAULT_PAGE_SIZE, Connection, page_request
from persistence.models import Post, User

if TYPE_CHECKING:
    from gql.schema.types.post import PostType


@entity(User, description="A person who can sign in.")
class UserType(Audited):
    username: str
    full_name: str
    is_active: bool = strawberry.field(description="Deactivated users cannot sign in.")
    is_superuser: bool = strawberry.field(description="Superusers may do everything.")

    @strawberry.field(description="Visible to the user and to superusers only; null otherwise.")
    def email(self, root: strawberry.Parent[User], info: Info) -> str | None:
        viewer = info.context.viewer
        if viewer is not None and (viewer.is_superuser or viewer.id == root.id):
            return root.email
        return None

    @strawberry.field(description="Posts this user wrote that you may see, newest first.")
    async def posts(
        self,
        root: strawberry.Parent[User],
        info: Info,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Connection[Annotated[PostType, strawberry.lazy("gql.schema.types.post")]]:
        page_request(first, after, None, None)  # validates the page size
        loaders = info.context.loaders
        page = await loaders.pages(Post.created_by_id).load(PageKey(root.id, first, after))
        return Connection.of(page, lambda: loaders.counts(Post.created_by_id).load(root.id))
