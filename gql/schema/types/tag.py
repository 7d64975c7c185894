from __future__ import annotations

import strawberry

from gql.schema.entities import entity
from gql.schema.types.audited import Audited
from persistence.models import Tag


@entity(Tag, description="A label for posts; names are unique ignoring case.")
class TagType(Audited):
    name: str
    color: str = strawberry.field(description="A color as #rrggbb.")
