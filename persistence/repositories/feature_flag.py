from __future__ import annotations

from persistence.models.feature_flag import FeatureFlag, FlagOverride
from persistence.pagination import asc
from persistence.repository import BaseRepository


class FeatureFlagRepository(BaseRepository[FeatureFlag]):
    model = FeatureFlag
    default_order = (asc(FeatureFlag.key),)

    async def find_by_key(self, key: str) -> FeatureFlag | None:
        return await self.get_one_by(key=key)


class FlagOverrideRepository(BaseRepository[FlagOverride]):
    model = FlagOverride
    default_order = (asc(FlagOverride.created_at),)

    async def find(self, flag_id: object, user_id: int) -> FlagOverride | None:
        return await self.get_one_by(flag_id=flag_id, user_id=user_id)
