from __future__ import annotations

from datetime import datetime

import strawberry

from gql.schema.ids import to_global_id
from persistence.models import ApiToken


@strawberry.type(name="ApiToken", description="A bearer token; its secret is shown only once.")
class ApiTokenType:
    name: str
    prefix: str = strawberry.field(description="The token's first characters, to recognise it.")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = strawberry.field(description="Accurate to five minutes.")
    revoked_at: datetime | None

    @strawberry.field
    def id(self, root: strawberry.Parent[ApiToken]) -> strawberry.ID:
        return strawberry.ID(to_global_id("ApiToken", root.id))
