"""The rules of tags and feature flags, without GraphQL: superusers manage them, and
their values follow their formats."""

from __future__ import annotations

from typing import Any

import pytest

from domain import feature_flags, tags
from persistence.engine import Database
from persistence.errors import ForbiddenError, ValidationError
from persistence.models import User
from tests.domain.conftest import as_


async def test_superusers_manage_tags_with_lower_case_colors(
    database: Database, author: User, root: User
) -> None:
    with pytest.raises(ForbiddenError):
        async with as_(database, author) as uow:
            await tags.create_tag(uow, author, name="news", color="#123456")
    async with as_(database, root) as uow:
        tag = await tags.create_tag(uow, root, name=" news ", color="#ABCDEF")
    assert (tag.name, tag.color) == ("news", "#abcdef")
    with pytest.raises(ValidationError) as refused:
        async with as_(database, root) as uow:
            await tags.update_tag(uow, root, tag.id, color="red")
    assert refused.value.field == "color"


@pytest.mark.parametrize(
    ("values", "field"),
    [({"key": "Bad Key"}, "key"), ({"key": "x"}, "key"), ({"name": ""}, "name"),
     ({"rollout_percentage": 101}, "rollout_percentage")],
)  # fmt: skip
async def test_flags_follow_their_formats(
    database: Database, root: User, values: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        async with as_(database, root) as uow:
            await feature_flags.create_feature_flag(
                uow, root, **{"key": "new-editor", "name": "New", **values}
            )
    assert refused.value.field == field


async def test_an_override_wins_over_the_rollout(
    database: Database, author: User, root: User
) -> None:
    async with as_(database, root) as uow:
        flag = await feature_flags.create_feature_flag(
            uow, root, key="dark-mode", name="Dark", enabled=True, rollout_percentage=0
        )
        override = await feature_flags.set_flag_override(
            uow, root, flag.id, author.id, enabled=True
        )
    assert feature_flags.is_enabled(flag, author.id, override)
    assert not feature_flags.is_enabled(flag, author.id, None)
    async with as_(database, root) as uow:
        assert await feature_flags.remove_flag_override(uow, root, flag.id, author.id)
        assert not await feature_flags.remove_flag_override(uow, root, flag.id, author.id)
    with pytest.raises(ForbiddenError):
        async with as_(database, author) as uow:
            await feature_flags.set_flag_override(uow, author, flag.id, author.id, enabled=True)


def test_a_rollout_bucket_is_stable_and_spread() -> None:
    buckets = [feature_flags.bucket("dark-mode", user) for user in range(1000)]
    assert buckets == [feature_flags.bucket("dark-mode", user) for user in range(1000)]
    assert 40 < sum(b < 50 for b in buckets) / 10 < 60  # about half under 50
