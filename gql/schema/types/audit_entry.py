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
from gql.schema.types.connection import Connection
from gql.schema.types.node import Node
from gql.schema.vocabulary import translate
from persistence.base import Base
from persistence.models import AuditLog, User
from persistence.personal import open_changes, open_column, sealed_owners
from persistence.verification import verify_entity

if TYPE_CHECKING:
    from gql.schema.types.user import UserType


@strawberry.type(
    name="AuditEntryConnection",
    description="One page of a list. Page forwards with `first`/`after` and "
    "backwards with `last`/`before`; at most 100 items a page.",
)
class AuditEntryConnection(Connection[Annotated["AuditEntryType", strawberry.lazy(__name__)]]):
    entity_id: strawberry.Private[str | None] = None

    @strawberry.field(
        description="On an object's history: whether every one of its entries still hashes "
        "to what the audit chain recorded and links to the entry before it; null while one "
        "awaits its position (a fraction of a second after commit), and on the audit log. "
        "The whole trail's proof (signed checkpoints, truncation) is `verifyAudit`."
    )
    async def verified(self, info: Info) -> bool | None:
        if self.entity_id is None:
            return None
        async with info.context.database.engine.connect() as connection:
            return await verify_entity(connection, self.entity_id)


@strawberry.enum(description="What happened to the object.")
class AuditAction(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SOFT_DELETE = "soft_delete"
    RESTORE = "restore"
    ERASE = "erase"


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
    @strawberry.field(
        description="Its place in commit order, a 64-bit number as a decimal string: an "
        "entry whose transaction committed later has a later position, and a new position "
        "never appears at or below one already seen. The audit chain links entries in this "
        "order. Null for a moment after commit, until the sequencer gives it one."
    )
    async def position(self, root: strawberry.Parent[AuditLog], info: Info) -> str | None:
        position = await info.context.loaders.position_by_entry_id.load(root.id)
        return None if position is None else str(position)

    request_id: str | None = strawberry.field(description="The request that made the change.")

    @strawberry.field(
        description="The client address of the request that made the change; null for the "
        "system, `[erased]` once its actor is erased."
    )
    async def ip_address(self, root: strawberry.Parent[AuditLog], info: Info) -> str | None:
        deks = await _keys(info, sealed_owners(root.ip_address, None, {}))
        return open_column(root.ip_address, "ip_address", deks)

    @strawberry.field(
        description="The user agent of the request that made the change; null for the "
        "system, `[erased]` once its actor is erased."
    )
    async def user_agent(self, root: strawberry.Parent[AuditLog], info: Info) -> str | None:
        deks = await _keys(info, sealed_owners(None, root.user_agent, {}))
        return open_column(root.user_agent, "user_agent", deks)

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
        "show as `[redacted]`, and a person's data as `[erased]` once they are erased.",
        metadata={MAX_ITEMS: max(len(table.columns) for table in Base.metadata.tables.values())},
    )
    async def changes(self, root: strawberry.Parent[AuditLog], info: Info) -> list[AuditChange]:
        deks = await _keys(info, sealed_owners(None, None, root.changes))
        changes = open_changes(root.entity_type, root.changes, deks)
        return [
            AuditChange(field=field, old=old, new=new)
            for field, old, new in translate(root.entity_type, changes)
        ]

    @strawberry.field(description="Who made the change; null for the system.")
    async def actor(
        self, root: strawberry.Parent[AuditLog], info: Info
    ) -> Annotated[UserType, strawberry.lazy("gql.schema.types.user")] | None:
        if root.actor_id is None:
            return None
        user: User | None = await info.context.loaders.by_id(User).load(root.actor_id)
        return user


async def _keys(info: Info, owners: set[int]) -> dict[int, bytes]:
    """The data keys of ``owners`` that still exist: the entries of a page load theirs
    together, in one statement."""
    if not owners:
        return {}
    ids = sorted(owners)
    found = await info.context.loaders.deks_by_user_id.load_many(ids)
    return {uid: dek for uid, dek in zip(ids, found, strict=True) if dek is not None}
