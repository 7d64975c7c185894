from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select, tuple_

from persistence.models.feature_flag import FeatureFlag, FlagOverride
from persistence.pagination import asc
from persistence.repository import BaseRepository


class FeatureFlagRepository(BaseRepository[FeatureFlag]):
    model = FeatureFlag
    default_order = (asc(FeatureFlag.key),)

    async def find_by_key(self, key: str) -> FeatureFlag | None:
        return await self.get_one_by(key=key)

    async def delete_with_overrides(
        self, flag: FeatureFlag, *, expected_version: int | None = None
    ) -> None:
        """Delete the flag and its overrides, each removal audited (the database would
        cascade them silently)."""
        self.check_version(flag, expected_version)
        overrides = await self.session.scalars(
            select(FlagOverride).where(FlagOverride.flag_id == flag.id)
        )
        for override in overrides:
            await self.session.delete(override)
        # Flush the children first: the ORM does not order these DELETEs (no
        # relationship), and deleting the flag first would cascade them away.
        await self.session.flush()
        await self.delete(flag)


class FlagOverrideRepository(BaseRepository[FlagOverride]):
    model = FlagOverride
    default_order = (asc(FlagOverride.created_at),)

    async def find(self, flag_id: UUID, user_id: int) -> FlagOverride | None:
        return await self.get_one_by(flag_id=flag_id, user_id=user_id)

    async def find_pairs(
        self, pairs: Sequence[tuple[UUID, int]]
    ) -> dict[tuple[UUID, int], FlagOverride]:
        """The overrides for these (flag, user) pairs, in one statement."""
        if not pairs:
            return {}
        rows = await self.list(tuple_(FlagOverride.flag_id, FlagOverride.user_id).in_(pairs))
        return {(row.flag_id, row.user_id): row for row in rows}
