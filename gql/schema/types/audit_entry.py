from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from domain.rules import superusers_only
from gql.engine.cost import MAX_ITEMS
from gql.schema.context import Info
from gql.schema.entities import entity, entry_global_id
from gql.schema.scalars import JSON
from gql.schema.types.node import Node
from gql.schema.vocabulary import translate
from persistence.base import Base
from persistence.models import AuditLog, User

if TYPE_CHECKING:
    from gql.schema.types.user import UserType


@strawberry.enum(description="What happened to the object.")
class AuditAction(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SOFT_DELETE = "soft_delete"
    RESTORE = "restore"


@strawberry.type(description="One changed field: its value before and after.")
class AuditChange:
    field: str = strawberry.field(
        description="The field of the object's type that changed, e.g. `publishedAt`, "
        "`post` (a reference), `tags` (a tag added to or removed from a post). A value "
        "that no field shows is named the same way: `deletedAt`, `password`."
    )
    old: JSON | None = strawberry.field(description="The value before; null if it had none.")
    new: JSON | None = strawberry.field(description="The value after; null if it has none.")


@entity(
    AuditLog,
    name="AuditEntry",
    description="One change to one object, append-only.",
    visible_to=superusers_only,
)
class AuditEntryType(Node):
    request_id: str | None = strawberry.field(description="The request that made the change.")
    ip_address: str | None
    user_agent: str | None

    @strawberry.field(description="What happened.")
    def action(self, root: strawberry.Parent[AuditLog]) -> AuditAction:
        return AuditAction(root.action)

    @strawberry.field(description="When it happened (UTC).")
    def at(self, root: strawberry.Parent[AuditLog]) -> datetime:
        return root.created_at

    @strawberry.field(description="The kind of row that changed, e.g. `posts`, `post_tags`.")
    def entity_type(self, root: strawberry.Parent[AuditLog]) -> str:
        return root.entity_type

    @strawberry.field(description="The global id of the object the change belongs to.")
    def entity_id(self, root: strawberry.Parent[AuditLog]) -> strawberry.ID:
        return strawberry.ID(entry_global_id(root.entity_type, root.entity_id))

    @strawberry.field(
        description="The changed fields, as this schema names them: enum values by name, "
        "references as global ids (for `node(id:)`), date-times in ISO 8601 (UTC); secrets "
        "show as `[redacted]`.",
        metadata={MAX_ITEMS: max(len(table.columns) for table in Base.metadata.tables.values())},
    )
    def changes(self, root: strawberry.Parent[AuditLog]) -> list[AuditChange]:
        return [
            AuditChange(field=field, old=old, new=new)
            for field, old, new in translate(root.entity_type, root.changes)
        ]

    @strawberry.field(description="Who made the change; null for the system.")
    async def actor(
        self, root: strawberry.Parent[AuditLog], info: Info
    ) -> Annotated[UserType, strawberry.lazy("gql.schema.types.user")] | None:
        if root.actor_id is None:
            return None
        user: User | None = await info.context.loaders.by_id(User).load(root.actor_id)
        return user
