"""The audit log, for superusers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from gql.errors import BadUserInputError, NotAllowedError
from gql.schema.context import Info
from gql.schema.ids import int_key, parse_global_id, uuid_key
from gql.schema.resolvers.listing import list_connection
from gql.schema.scalars import MAX_FILTER_LENGTH, filter_text
from gql.schema.types.audit_entry import AuditAction, AuditEntryConnection
from gql.schema.types.audit_verification import AuditVerification
from persistence.integrity import trusted_keys_of
from persistence.repositories.audit_log import AuditLogRepository
from persistence.verification import verify


@strawberry.input(description="Which audit entries to list; all conditions must hold.")
class AuditLogFilter:
    actor_id: strawberry.ID | None = strawberry.field(default=None, description="A User id.")
    entity_id: strawberry.ID | None = strawberry.field(
        default=None, description="The global id of the object the entries are about."
    )
    entity_type: str | None = strawberry.field(
        default=None,
        description=f"A kind of row, e.g. `posts` or `post_tags`; at most {MAX_FILTER_LENGTH} "
        "characters.",
    )
    action: AuditAction | None = None
    since: datetime | None = strawberry.field(default=None, description="At or after (UTC).")
    until: datetime | None = strawberry.field(default=None, description="Before (UTC).")


def entity_key(global_id: strawberry.ID) -> str:
    """The stored entity id behind a global id: a user's integer, else a dashed UUID."""
    type_name, _ = parse_global_id(global_id, "entityId")
    if type_name == "User":
        return str(int_key(global_id, "User", "entityId"))
    return str(uuid_key(global_id, type_name, "entityId"))


@strawberry.type
class Query:
    @strawberry.field(description="Every recorded change, newest first (superusers).")
    async def audit_log(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: AuditLogFilter | None = None,
    ) -> AuditEntryConnection | None:
        if not info.context.require_viewer().is_superuser:
            raise NotAllowedError("Only superusers can read the audit log.")
        f = filter or AuditLogFilter()
        where = AuditLogRepository.criteria(
            actor_id=int_key(f.actor_id, "User", "actorId") if f.actor_id is not None else None,
            entity_type=filter_text(f.entity_type, "filter.entityType"),
            entity_id=entity_key(f.entity_id) if f.entity_id is not None else None,
            action=f.action.value if f.action is not None else None,
            since=f.since,
            until=f.until,
        )
        return await list_connection(
            info, AuditLogRepository, where, first=first, after=after, last=last,
            before=before, kind=AuditEntryConnection,
        )  # fmt: skip

    @strawberry.field(
        description="Recompute the audit trail's hash chain, from the beginning or from the "
        "signed checkpoint before `from`, and name what was edited, deleted, inserted, "
        "reordered or cut off (superusers). Bounded by the statement timeout: check a "
        "large trail by ranges, or with `auditql audit verify`."
    )
    async def verify_audit(
        self,
        info: Info,
        from_: Annotated[
            str | None, strawberry.argument(name="from", description="First position to check.")
        ] = None,
        to: Annotated[
            str | None, strawberry.argument(description="Last position to check.")
        ] = None,
    ) -> AuditVerification | None:
        if not info.context.require_viewer().is_superuser:
            raise NotAllowedError("Only superusers can verify the audit trail.")
        first, last = _position(from_, "from"), _position(to, "to")
        settings = info.context.settings
        async with info.context.database.engine.connect() as connection:
            report = await verify(connection, trusted_keys_of(settings), first=first, last=last)
        return AuditVerification.of(report)


def _position(value: str | None, argument: str) -> int | None:
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or not 0 < int(value) < 2**63:
        raise BadUserInputError(f"'{argument}' is a position: a whole number from 1, as a string.")
    return int(value)
