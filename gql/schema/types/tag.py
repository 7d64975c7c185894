from __future__ import annotations

import strawberry

from gql.schema.types.audited import Audited
from gql.schema.types.node import model_type_check
from persistence.models import Tag


@strawberry.type(name="Tag", description="A label for posts; names are unique ignoring case.")
class TagType(Audited):
    is_type_of = model_type_check(Tag)

    name: str
    color: str = strawberry.field(description="A color as #rrggbb.")
