"""Feature flags: evaluated by anyone, deterministically (a user sees the same answer
every time); created, changed and overridden per user by superusers."""

from __future__ import annotations

import hashlib
import re
from uuid import UUID

from domain.rules import bounded_text, require_superuser
from persistence.errors import ValidationError
from persistence.models import FeatureFlag, FlagOverride, User
from persistence.repositories.feature_flag import FeatureFlagRepository, FlagOverrideRepository
from persistence.repositories.user import UserRepository
from persistence.unit_of_work import UnitOfWork

_KEY = re.compile(r"[a-z][a-z0-9_.-]{1,63}")


def bucket(flag_key: str, user_id: int) -> int:
    """A stable number in 0..99 for (flag, user): SHA-256, not Python's salted hash()."""
    digest = hashlib.sha256(f"{flag_key}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def is_enabled(flag: FeatureFlag, user_id: int | None, override: FlagOverride | None) -> bool:
    """A user's override wins; otherwise an enabled flag is on for the users whose bucket
    falls under the rollout percentage. Anonymous viewers have no bucket: for them a flag
    is on only when it is enabled for 100%."""
    if override is not None:
        return override.enabled
    if not flag.enabled:
        return False
    if user_id is None:
        return flag.rollout_percentage >= 100
    return bucket(flag.key, user_id) < flag.rollout_percentage


def valid_key(value: str) -> str:
    if not _KEY.fullmatch(value):
        raise ValidationError("key", "key must match ^[a-z][a-z0-9_.-]{1,63}$.")
    return value


def valid_name(value: str) -> str:
    return bounded_text(value, "name", max_length=100)


def valid_description(value: str) -> str:
    return bounded_text(value, "description", max_length=2000, min_length=0)


def valid_percentage(value: int) -> int:
    if not 0 <= value <= 100:
        raise ValidationError("rollout_percentage", "rolloutPercentage must be 0-100.")
    return value


async def managed(uow: UnitOfWork, actor: User, flag_id: UUID) -> FeatureFlag:
    """The flag, locked for a change by a superuser."""
    require_superuser(actor)
    return await FeatureFlagRepository(uow.session).get_or_raise(flag_id, for_update=True)


async def create_feature_flag(
    uow: UnitOfWork, actor: User, *, key: str, name: str, description: str = "",
    enabled: bool = False, rollout_percentage: int = 100,
) -> FeatureFlag:  # fmt: skip
    require_superuser(actor)
    return await FeatureFlagRepository(uow.session).add(
        FeatureFlag(
            key=valid_key(key),
            name=valid_name(name),
            description=valid_description(description),
            enabled=enabled,
            rollout_percentage=valid_percentage(rollout_percentage),
        )
    )


async def update_feature_flag(
    uow: UnitOfWork, actor: User, flag_id: UUID, *, name: str | None = None,
    description: str | None = None, enabled: bool | None = None,
    rollout_percentage: int | None = None, expected_version: int | None = None,
) -> FeatureFlag:  # fmt: skip
    flag = await managed(uow, actor, flag_id)
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = valid_name(name)
    if description is not None:
        values["description"] = valid_description(description)
    if enabled is not None:
        values["enabled"] = enabled
    if rollout_percentage is not None:
        values["rollout_percentage"] = valid_percentage(rollout_percentage)
    return await FeatureFlagRepository(uow.session).update(
        flag, values, expected_version=expected_version
    )


async def delete_feature_flag(
    uow: UnitOfWork, actor: User, flag_id: UUID, *, expected_version: int | None = None
) -> None:
    """The flag and its overrides, each removal audited."""
    flag = await managed(uow, actor, flag_id)
    await FeatureFlagRepository(uow.session).delete_with_overrides(
        flag, expected_version=expected_version
    )


async def set_flag_override(
    uow: UnitOfWork, actor: User, flag_id: UUID, user_id: int, *, enabled: bool
) -> FlagOverride:
    """The flag fixed on or off for one user, whatever its rollout."""
    flag = await managed(uow, actor, flag_id)
    user = await UserRepository(uow.session).get_or_raise(user_id)
    overrides = FlagOverrideRepository(uow.session)
    override = await overrides.find(flag.id, user.id)
    if override is None:
        return await overrides.add(FlagOverride(flag_id=flag.id, user_id=user.id, enabled=enabled))
    return await overrides.update(override, {"enabled": enabled})


async def remove_flag_override(uow: UnitOfWork, actor: User, flag_id: UUID, user_id: int) -> bool:
    """The user follows the flag's rollout again; False when there was no override."""
    flag = await managed(uow, actor, flag_id)
    user = await UserRepository(uow.session).get_or_raise(user_id)
    overrides = FlagOverrideRepository(uow.session)
    override = await overrides.find(flag.id, user.id)
    if override is not None:
        await overrides.delete(override)
    return override is not None
