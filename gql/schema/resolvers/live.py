"""Subscriptions: committed changes as they commit, in commit order, resumable.

Each event is read for its subscriber through the same visibility rules as a query, with
the viewer as they are at that moment (:mod:`gql.live.streams`): what a subscriber may
not see, it is not sent.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any
from uuid import UUID

import strawberry

from gql.errors import NotAllowedError, NotFoundError
from gql.live.bus import EVERYTHING, child_topic, entity_topic
from gql.live.streams import channel_of, cursor, events
from gql.schema.context import Info
from gql.schema.entities import entry_global_id
from gql.schema.ids import int_key
from gql.schema.resolvers.audit_log import entity_key
from gql.schema.resolvers.node import find
from gql.schema.scalars import MAX_FILTER_LENGTH, filter_text
from gql.schema.types.audit_entry import AuditAction, AuditEntryType
from gql.schema.types.live import CommentAddedEvent, NodeChangedEvent
from persistence.feed import Event
from persistence.models import AuditLog, Comment, Post
from persistence.repositories.audit_log import AuditLogRepository

_AFTER = (
    "A cursor received before (an event's `cursor`, an entry's `position`; \"0\" for the "
    "beginning): first every event after it, then live ones, none missed and none twice. "
    "Without it, events from now on."
)
_GONE = {"delete", "soft_delete"}


@strawberry.input(description="Which audit events to send; all conditions must hold.")
class AuditEventFilter:
    actor_id: strawberry.ID | None = strawberry.field(default=None, description="A User id.")
    entity_id: strawberry.ID | None = strawberry.field(
        default=None, description="The global id of the object the entries are about."
    )
    entity_type: str | None = strawberry.field(
        default=None,
        description=f"A kind of row, e.g. `posts`; at most {MAX_FILTER_LENGTH} characters.",
    )
    action: AuditAction | None = None


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every committed change, in commit order, as it commits (superusers)."
    )
    async def audit_events(
        self,
        info: Info,
        after: Annotated[str | None, strawberry.argument(description=_AFTER)] = None,
        filter: AuditEventFilter | None = None,
    ) -> AsyncGenerator[AuditEntryType, None]:
        _require_superuser(info)
        f = filter or AuditEventFilter()
        actor_id = int_key(f.actor_id, "User", "actorId") if f.actor_id is not None else None
        entity_type = filter_text(f.entity_type, "filter.entityType")
        entity_id = entity_key(f.entity_id) if f.entity_id is not None else None
        action = f.action.value if f.action is not None else None
        where = AuditLogRepository.criteria(
            actor_id=actor_id, entity_type=entity_type, entity_id=entity_id, action=action
        )

        def matches(event: Event) -> bool:
            return (
                (actor_id is None or event.actor_id == actor_id)
                and (entity_type is None or event.entity_type == entity_type)
                and (entity_id is None or event.entity_id == entity_id)
                and (action is None or event.action == action)
            )

        topic = EVERYTHING if entity_id is None else entity_topic(entity_id)
        stream = events(info, topic, cursor(after), where=where, matches=matches)
        return _audit_entries(info, stream)

    @strawberry.subscription(
        description="The changes of one object you may see (updated, deleted, restored), "
        "while you may see it: a post made a draft reaches only its author and superusers."
    )
    async def node_changed(
        self,
        info: Info,
        id: strawberry.ID,
        after: Annotated[str | None, strawberry.argument(description=_AFTER)] = None,
    ) -> AsyncGenerator[NodeChangedEvent, None]:
        channel_of(info)
        node = await find(info, id)
        if node is None:
            raise NotFoundError()
        stored_id = str(node.id)
        stream = events(
            info, entity_topic(stored_id), cursor(after),
            where=[AuditLog.entity_id == stored_id],
            matches=lambda event: entry_global_id(event.entity_type, event.entity_id) == id,
        )  # fmt: skip
        return _node_changes(info, id, stream)

    @strawberry.subscription(description="New comments on a post you may see.")
    async def comment_added(
        self,
        info: Info,
        post_id: strawberry.ID,
        after: Annotated[str | None, strawberry.argument(description=_AFTER)] = None,
    ) -> AsyncGenerator[CommentAddedEvent, None]:
        channel_of(info)
        post = await find(info, post_id)
        if not isinstance(post, Post):
            raise NotFoundError("There is no such post that you may see.")
        key = str(post.id)
        where = [
            AuditLog.entity_type == Comment.__tablename__,
            AuditLog.action == "create",
            AuditLog.changes["post_id"][1].as_string() == key,
        ]
        stream = events(
            info, child_topic(Comment.__tablename__, "post_id", key), cursor(after), where=where
        )
        return _comments(info, stream)


def _require_superuser(info: Info) -> None:
    channel = channel_of(info)
    if channel.viewer is None or not channel.viewer.is_superuser:
        raise NotAllowedError("Only superusers can follow the audit trail.")


async def _audit_entries(info: Info, stream: AsyncIterator[Event]) -> AsyncIterator[Any]:
    channel = channel_of(info)
    async for event in stream:
        _require_superuser(info)  # still one, as of the last token check
        entry = await info.context.loaders.by_id(AuditLog).load(event.entry_id)
        if entry is not None:
            yield entry
            channel.delivered(event)


async def _node_changes(
    info: Info, id: strawberry.ID, stream: AsyncIterator[Event]
) -> AsyncIterator[NodeChangedEvent]:
    """Each change, with the object as the subscriber may see it now. A change that
    leaves it out of sight is not sent; its deletion is, once, to one who saw it."""
    channel = channel_of(info)
    seen = True
    async for event in stream:
        node = await find(info, id)
        if node is None and not (seen and event.action in _GONE):
            seen = False
            continue
        seen = node is not None
        yield NodeChangedEvent(
            cursor=str(event.position), action=AuditAction(event.action), node=node
        )
        channel.delivered(event)


async def _comments(info: Info, stream: AsyncIterator[Event]) -> AsyncIterator[CommentAddedEvent]:
    channel = channel_of(info)
    async for event in stream:
        comment = await info.context.loaders.by_id(Comment).load(UUID(event.entity_id))
        if comment is not None:
            yield CommentAddedEvent(cursor=str(event.position), comment=comment)
            channel.delivered(event)
