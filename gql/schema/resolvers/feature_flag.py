"""Feature flags: evaluated by anyone, listed and managed by superusers."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import strawberry

from domain import feature_flags
from gql.errors import NotAllowedError
from gql.schema.commands import command_field
from gql.schema.context import Info
from gql.schema.ids import int_key, uuid_key
from gql.schema.mutations import perform
from gql.schema.resolvers.listing import list_connection
from gql.schema.scalars import filter_text
from gql.schema.types.connection import Connection
from gql.schema.types.error import (
    AlreadyExistsErrorType,
    ConflictErrorType,
    ForbiddenErrorType,
    NotFoundErrorType,
    ValidationErrorType,
)
from gql.schema.types.feature_flag import FeatureFlagType, FlagOverrideType
from persistence.models import FeatureFlag, FlagOverride, User
from persistence.repositories.feature_flag import FeatureFlagRepository
from persistence.unit_of_work import UnitOfWork


@strawberry.type
class Query:
    @strawberry.field(description="All feature flags, by key (superusers).")
    async def feature_flags(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[FeatureFlagType] | None:
        if not info.context.require_viewer().is_superuser:
            raise NotAllowedError("Only superusers can list feature flags.")
        return await list_connection(
            info, FeatureFlagRepository, [], first=first, after=after, last=last, before=before
        )

    @strawberry.field(description="One flag by key; ask for `isEnabled` to evaluate it for you.")
    async def feature_flag(self, info: Info, key: str) -> FeatureFlagType | None:
        key = filter_text(key, "key")
        async with info.context.database.reader() as session:
            return await FeatureFlagRepository(session).find_by_key(key)


@strawberry.input
class CreateFeatureFlagInput:
    key: str = strawberry.field(description="Lower-case letters, digits and `_.-`; 2-64 long.")
    name: str
    description: str = ""
    enabled: bool = False
    rollout_percentage: int = strawberry.field(default=100, description="0-100.")


@strawberry.input
class UpdateFeatureFlagInput:
    id: strawberry.ID
    name: str | None = None
    description: str | None = None
    enabled: bool | None = None
    rollout_percentage: int | None = None
    expected_version: int | None = None


@strawberry.input
class DeleteFeatureFlagInput:
    id: strawberry.ID
    expected_version: int | None = None


@strawberry.input
class SetFlagOverrideInput:
    flag_id: strawberry.ID
    user_id: strawberry.ID
    enabled: bool


@strawberry.input
class RemoveFlagOverrideInput:
    flag_id: strawberry.ID
    user_id: strawberry.ID


@strawberry.type
class DeleteFeatureFlagSuccess:
    deleted_id: strawberry.ID


@strawberry.type
class RemoveFlagOverrideSuccess:
    removed: bool = strawberry.field(description="False when there was no override to remove.")


DeleteFeatureFlagResult = Annotated[
    DeleteFeatureFlagSuccess | NotFoundErrorType | ConflictErrorType | ForbiddenErrorType,
    strawberry.union("DeleteFeatureFlagResult"),
]
RemoveFlagOverrideResult = Annotated[
    RemoveFlagOverrideSuccess | NotFoundErrorType | ForbiddenErrorType,
    strawberry.union("RemoveFlagOverrideResult"),
]


def _forget(info: Info, flag_id: object) -> None:
    loaders = info.context.loaders
    loaders.by_id(FeatureFlag).clear(flag_id)
    loaders.override_by_flag_and_user.clear_all()
    loaders.pages(FlagOverride.flag_id).clear_all()


@strawberry.type
class Mutation:
    create_feature_flag = command_field(
        feature_flags.create_feature_flag, FeatureFlagType,
        ValidationErrorType, AlreadyExistsErrorType, ForbiddenErrorType,
        description="Create a feature flag (superusers).", input_type=CreateFeatureFlagInput,
    )  # fmt: skip
    update_feature_flag = command_field(
        feature_flags.update_feature_flag, FeatureFlagType,
        ValidationErrorType, NotFoundErrorType, ConflictErrorType, ForbiddenErrorType,
        description="Change a feature flag (superusers).", input_type=UpdateFeatureFlagInput,
    )  # fmt: skip

    @strawberry.mutation(description="Delete a feature flag and its overrides (superusers).")
    async def delete_feature_flag(
        self, info: Info, input: DeleteFeatureFlagInput
    ) -> DeleteFeatureFlagResult | None:
        async def work(uow: UnitOfWork, viewer: User) -> DeleteFeatureFlagSuccess:
            key = uuid_key(input.id, "FeatureFlag")
            await feature_flags.delete_feature_flag(
                uow, viewer, key, expected_version=input.expected_version
            )
            _forget(info, key)
            return DeleteFeatureFlagSuccess(deleted_id=input.id)

        return await perform(info, work)

    set_flag_override = command_field(
        feature_flags.set_flag_override,
        FlagOverrideType,
        NotFoundErrorType,
        ForbiddenErrorType,
        description="Fix a flag on or off for one user (superusers).",
        input_type=SetFlagOverrideInput,
    )

    @strawberry.mutation(description="Let a user follow the flag's rollout again (superusers).")
    async def remove_flag_override(
        self, info: Info, input: RemoveFlagOverrideInput
    ) -> RemoveFlagOverrideResult | None:
        async def work(uow: UnitOfWork, viewer: User) -> RemoveFlagOverrideSuccess:
            flag_id, user_id = _pair(input.flag_id, input.user_id)
            removed = await feature_flags.remove_flag_override(uow, viewer, flag_id, user_id)
            _forget(info, flag_id)
            return RemoveFlagOverrideSuccess(removed=removed)

        return await perform(info, work)


def _pair(flag_id: strawberry.ID, user_id: strawberry.ID) -> tuple[UUID, int]:
    return uuid_key(flag_id, "FeatureFlag", "flagId"), int_key(user_id, "User", "userId")
