"""``interface Audited``: who made an object, who changed it last, and its history."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from gql.engine.lean import LEAN, call_lean
from gql.errors import NotAllowedError
from gql.schema.context import Context, Info
from gql.schema.loaders import PageKey
from gql.schema.types.connection import DEFAULT_PAGE_SIZE, page_request
from gql.schema.types.node import Node
from persistence.models import User

if TYPE_CHECKING:
    from gql.schema.types.audit_entry import AuditEntryConnection
    from gql.schema.types.user import UserType


def creator(row: Any, context: Context, _type_name: str) -> Any:
    return _user(context, row.created_by_id)


def last_editor(row: Any, context: Context, _type_name: str) -> Any:
    return _user(context, row.updated_by_id)


def _user(context: Context, user_id: int | None) -> Any:
    """The user, or (when a list did not load it already) the awaitable load: the
    executor awaits what a resolver returns when it is awaitable."""
    return None if user_id is None else context.loaders.by_id(User).now_or_later(user_id)


@strawberry.interface(
    name="Audited",
    description="An object whose every change is recorded: by whom, when, and what.",
)
class Audited(Node):
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    version: int = strawberry.field(
        description="Goes up by one with every change; send it back as `expectedVersion` "
        "to make an update fail if someone else changed the object meanwhile."
    )

    @strawberry.field(
        description="Who created it; null for the system or a deleted user.",
        metadata={LEAN: creator},
    )
    def created_by(
        self, root: strawberry.Parent[Any], info: Info
    ) -> Annotated[UserType, strawberry.lazy("gql.schema.types.user")] | None:
        return call_lean(creator, root, info)

    @strawberry.field(
        description="Who changed it last; null for the system or a deleted user.",
        metadata={LEAN: last_editor},
    )
    def updated_by(
        self, root: strawberry.Parent[Any], info: Info
    ) -> Annotated[UserType, strawberry.lazy("gql.schema.types.user")] | None:
        return call_lean(last_editor, root, info)

    @strawberry.field(
        description="Its audit entries, newest first. Visible to superusers and to the "
        "object's creator."
    )
    async def history(
        self,
        root: strawberry.Parent[Any],
        info: Info,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Annotated[AuditEntryConnection, strawberry.lazy("gql.schema.types.audit_entry")] | None:
        viewer = info.context.require_viewer()
        owner = root.id if isinstance(root, User) else root.created_by_id
        if not (viewer.is_superuser or owner == viewer.id):
            raise NotAllowedError("Only its creator and superusers can read an object's history.")
        page_request(first, after, None, None)  # validates the page size
        loaders, entity_id = info.context.loaders, str(root.id)
        page = await loaders.history_by_entity_id.load(PageKey(entity_id, first, after))
        from gql.schema.types.audit_entry import AuditEntryConnection

        history = AuditEntryConnection.of(
            page, lambda: loaders.history_count_by_entity_id.load(entity_id)
        )
        history.entity_id = entity_id
        return history
