from __future__ import annotations

import itertools
from typing import Any

from persistence.models import Tag
from persistence.repositories.tag import TagRepository
from persistence.unit_of_work import UnitOfWork

_numbers = itertools.count(1)


async def create_tag(uow: UnitOfWork, **overrides: Any) -> Tag:
    values: dict[str, Any] = {"name": f"tag-{next(_numbers)}", "color": "#336699"}
    return await TagRepository(uow.session).add(Tag(**(values | overrides)))
