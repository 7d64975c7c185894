from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from domain import bookmarks
from gql.schema.entities import entity, extend
from gql.schema.relations import children_field, parent_field
from gql.schema.types.audited import Audited
from gql.schema.types.user import UserType
from persistence.models.bookmark import Bookmark

if TYPE_CHECKING:
    from gql.schema.types.post import PostType


@entity(
    Bookmark,
    description="A post you marked, with a note; only you see it, while you see the post.",
    visible_to=bookmarks.visible_to,
    rules=bookmarks,
)
class BookmarkType(Audited):
    note: str | None = strawberry.field(description=f"{bookmarks.MAX_NOTE:,} characters at most.")
    post = parent_field(
        Annotated["PostType", strawberry.lazy("gql.schema.types.post")],
        Bookmark.post_id,
        description="The post it marks.",
    )


MINE = "The user's bookmarks, oldest first: yours alone, empty for anyone else's."
extend(UserType, bookmarks=children_field(BookmarkType, Bookmark.created_by_id, description=MINE))
