from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from domain.feature_flags import is_enabled
from domain.rules import superusers_only
from gql.errors import NotAllowedError
from gql.schema.context import Info
from gql.schema.entities import entity
from gql.schema.loaders import PageKey
from gql.schema.types.audited import Audited
from gql.schema.types.connection import DEFAULT_PAGE_SIZE, Connection, page_request
from persistence.models import FeatureFlag, FlagOverride, User

if TYPE_CHECKING:
    from gql.schema.types.user import UserType


@entity(FeatureFlag, description="A switch, rolled out to a share of users.")
class FeatureFlagType(Audited):
    key: str = strawberry.field(description="Unique; lower-case letters, digits, `_.-`.")
    name: str
    description: str
    enabled: bool = strawberry.field(description="Off means off for everyone without override.")
    rollout_percentage: int = strawberry.field(
        description="0-100: the share of signed-in users for whom an enabled flag is on."
    )

    @strawberry.field(description="Whether the flag is on for you (the viewer).")
    async def is_enabled(self, root: strawberry.Parent[FeatureFlag], info: Info) -> bool:
        viewer = info.context.viewer
        override = None
        if viewer is not None:
            loader = info.context.loaders.override_by_flag_and_user
            override = await loader.load((root.id, viewer.id))
        return is_enabled(root, viewer.id if viewer else None, override)

    @strawberry.field(description="Per-user overrides (superusers only).")
    async def overrides(
        self,
        root: strawberry.Parent[FeatureFlag],
        info: Info,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Connection[FlagOverrideType] | None:
        if not info.context.require_viewer().is_superuser:
            raise NotAllowedError("Only superusers can read flag overrides.")
        page_request(first, after, None, None)
        loaders = info.context.loaders
        page = await loaders.pages(FlagOverride.flag_id).load(PageKey(root.id, first, after))
        return Connection.of(page, lambda: loaders.counts(FlagOverride.flag_id).load(root.id))


@entity(
    FlagOverride,
    description="One user's fixed answer for one flag.",
    visible_to=superusers_only,
)
class FlagOverrideType(Audited):
    enabled: bool

    @strawberry.field(description="The flag it overrides.")
    async def flag(self, root: strawberry.Parent[FlagOverride], info: Info) -> FeatureFlagType:
        flag = await info.context.loaders.by_id(FeatureFlag).load(root.flag_id)
        return flag

    @strawberry.field(description="The user it applies to.")
    async def user(
        self, root: strawberry.Parent[FlagOverride], info: Info
    ) -> Annotated[UserType, strawberry.lazy("gql.schema.types.user")] | None:
        user: User | None = await info.context.loaders.by_id(User).load(root.user_id)
        return user
