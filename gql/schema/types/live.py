"""What subscriptions deliver: the same object types as queries, with the event's cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from gql.schema.types.audit_entry import AuditAction
from gql.schema.types.node import Node

if TYPE_CHECKING:
    from gql.schema.types.comment import CommentType

_CURSOR = (
    "The event's position in commit order: pass it as `after` to resume from here "
    "(a string: it is 64-bit)."
)


@strawberry.type(description="A change to the object `nodeChanged` watches.")
class NodeChangedEvent:
    cursor: str = strawberry.field(description=_CURSOR)
    action: AuditAction
    node: Node | None = strawberry.field(
        description="The object as it is when the event is delivered (a replayed event "
        "shows it as it is now); null once deleted."
    )


@strawberry.type(description="A comment added to the post `commentAdded` watches.")
class CommentAddedEvent:
    cursor: str = strawberry.field(description=_CURSOR)
    comment: Annotated[CommentType, strawberry.lazy("gql.schema.types.comment")]
