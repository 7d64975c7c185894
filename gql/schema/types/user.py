from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from gql.schema.context import Info
from gql.schema.entities import entity
from gql.schema.relations import children_field
from gql.schema.types.audited import Audited
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

    posts = children_field(
        Annotated["PostType", strawberry.lazy("gql.schema.types.post")],
        Post.created_by_id,
        description="Posts this user wrote that you may see, newest first.",
    )
