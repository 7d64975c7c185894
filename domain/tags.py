"""Tags: readable by everyone, managed by superusers."""

from __future__ import annotations

import re
from uuid import UUID

from domain.rules import bounded_text, require_superuser
from persistence.errors import ValidationError
from persistence.models import Tag, User
from persistence.repositories.tag import TagRepository
from persistence.unit_of_work import UnitOfWork

_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def valid_name(value: str) -> str:
    return bounded_text(value, "name", max_length=50)


def valid_color(value: str) -> str:
    if not _COLOR.fullmatch(value):
        raise ValidationError("color", "color must be #rrggbb.")
    return value.lower()


async def managed(uow: UnitOfWork, actor: User, tag_id: UUID) -> Tag:
    """The tag, locked for a change by a superuser."""
    require_superuser(actor)
    return await TagRepository(uow.session).get_or_raise(tag_id, for_update=True)


async def create_tag(uow: UnitOfWork, actor: User, *, name: str, color: str) -> Tag:
    require_superuser(actor)
    tag = Tag(name=valid_name(name), color=valid_color(color))
    return await TagRepository(uow.session).add(tag)


async def update_tag(
    uow: UnitOfWork, actor: User, tag_id: UUID, *, name: str | None = None,
    color: str | None = None, expected_version: int | None = None,
) -> Tag:  # fmt: skip
    tag = await managed(uow, actor, tag_id)
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = valid_name(name)
    if color is not None:
        values["color"] = valid_color(color)
    return await TagRepository(uow.session).update(tag, values, expected_version=expected_version)


async def delete_tag(
    uow: UnitOfWork, actor: User, tag_id: UUID, *, expected_version: int | None = None
) -> None:
    """The tag and its links to posts, each removal audited on its post."""
    tag = await managed(uow, actor, tag_id)
    await TagRepository(uow.session).delete_with_links(tag, expected_version=expected_version)
