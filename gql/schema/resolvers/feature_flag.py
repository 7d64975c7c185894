"""Feature flags: evaluated by anyone, listed and managed by superusers."""

from __future__ import annotations

import re
from typing import Annotated

import strawberry

from domain.rules import bounded_text, require_superuser
from gql.errors import NotAllowedError
from gql.schema.context import Info
from gql.schema.ids import int_key, uuid_key
from gql.schema.mutations import perform
from gql.schema.resolvers.listing import list_connection
from gql.schema.resolvers.node import NodeLookup
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
from persistence import errors as domain
from persistence.models import FeatureFlag, FlagOverride, User
from persistence.repositories.feature_flag import FeatureFlagRepository, FlagOverrideRepository
from persistence.repositories.user import UserRepository
from persistence.unit_of_work import UnitOfWork

_KEY = re.compile(r"[a-z][a-z0-9_.-]{1,63}")


async def _flag_node(info: Info, id: strawberry.ID) -> FeatureFlag | None:
    return await info.context.loaders.feature_flag_by_id.load(uuid_key(id, "FeatureFlag"))


async def _override_node(info: Info, id: strawberry.ID) -> FlagOverride | None:
    viewer = info.context.viewer
    if viewer is None or not viewer.is_superuser:
        return None
    return await info.context.loaders.flag_override_by_id.load(uuid_key(id, "FlagOverride"))


NODES: dict[str, NodeLookup] = {"FeatureFlag": _flag_node, "FlagOverride": _override_node}


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
    ) -> Connection[FeatureFlagType]:
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
class FeatureFlagSuccess:
    feature_flag: FeatureFlagType


@strawberry.type
class DeleteFeatureFlagSuccess:
    deleted_id: strawberry.ID


@strawberry.type
class FlagOverrideSuccess:
    flag_override: FlagOverrideType


@strawberry.type
class RemoveFlagOverrideSuccess:
    removed: bool = strawberry.field(description="False when there was no override to remove.")


CreateFeatureFlagResult = Annotated[
    FeatureFlagSuccess | ValidationErrorType | AlreadyExistsErrorType | ForbiddenErrorType,
    strawberry.union("CreateFeatureFlagResult"),
]
UpdateFeatureFlagResult = Annotated[
    FeatureFlagSuccess
    | ValidationErrorType
    | NotFoundErrorType
    | ConflictErrorType
    | ForbiddenErrorType,
    strawberry.union("UpdateFeatureFlagResult"),
]
DeleteFeatureFlagResult = Annotated[
    DeleteFeatureFlagSuccess | NotFoundErrorType | ConflictErrorType | ForbiddenErrorType,
    strawberry.union("DeleteFeatureFlagResult"),
]
SetFlagOverrideResult = Annotated[
    FlagOverrideSuccess | NotFoundErrorType | ForbiddenErrorType,
    strawberry.union("SetFlagOverrideResult"),
]
RemoveFlagOverrideResult = Annotated[
    RemoveFlagOverrideSuccess | NotFoundErrorType | ForbiddenErrorType,
    strawberry.union("RemoveFlagOverrideResult"),
]


def _name(value: str) -> str:
    return bounded_text(value, "name", max_length=100)


def _description(value: str) -> str:
    return bounded_text(value, "description", max_length=2000, min_length=0)


def _percentage(value: int) -> int:
    if not 0 <= value <= 100:
        raise domain.ValidationError("rollout_percentage", "rolloutPercentage must be 0-100.")
    return value


async def _flag(
    uow: UnitOfWork, viewer: User, id: strawberry.ID, argument: str = "id"
) -> FeatureFlag:
    require_superuser(viewer)
    flags = FeatureFlagRepository(uow.session)
    return await flags.get_or_raise(uuid_key(id, "FeatureFlag", argument), for_update=True)


async def _pair(uow: UnitOfWork, viewer: User, flag_id: strawberry.ID, user_id: strawberry.ID
                ) -> tuple[FeatureFlag, User]:  # fmt: skip
    flag = await _flag(uow, viewer, flag_id, "flagId")
    user = await UserRepository(uow.session).get_or_raise(int_key(user_id, "User", "userId"))
    return flag, user


def _forget(info: Info, flag_id: object) -> None:
    loaders = info.context.loaders
    loaders.feature_flag_by_id.clear(flag_id)
    loaders.override_by_flag_and_user.clear_all()
    loaders.overrides_by_flag_id.clear_all()


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a feature flag (superusers).")
    async def create_feature_flag(
        self, info: Info, input: CreateFeatureFlagInput
    ) -> CreateFeatureFlagResult:
        async def work(uow: UnitOfWork, viewer: User) -> FeatureFlagSuccess:
            require_superuser(viewer)
            if not _KEY.fullmatch(input.key):
                raise domain.ValidationError("key", "key must match ^[a-z][a-z0-9_.-]{1,63}$.")
            flag = await FeatureFlagRepository(uow.session).add(
                FeatureFlag(
                    key=input.key,
                    name=_name(input.name),
                    description=_description(input.description),
                    enabled=input.enabled,
                    rollout_percentage=_percentage(input.rollout_percentage),
                )
            )  # fmt: skip
            return FeatureFlagSuccess(feature_flag=flag)

        return await perform(info, work)

    @strawberry.mutation(description="Change a feature flag (superusers).")
    async def update_feature_flag(
        self, info: Info, input: UpdateFeatureFlagInput
    ) -> UpdateFeatureFlagResult:
        async def work(uow: UnitOfWork, viewer: User) -> FeatureFlagSuccess:
            flag = await _flag(uow, viewer, input.id)
            values: dict[str, object] = {}
            if input.name is not None:
                values["name"] = _name(input.name)
            if input.description is not None:
                values["description"] = _description(input.description)
            if input.enabled is not None:
                values["enabled"] = input.enabled
            if input.rollout_percentage is not None:
                values["rollout_percentage"] = _percentage(input.rollout_percentage)
            await FeatureFlagRepository(uow.session).update(
                flag, values, expected_version=input.expected_version
            )
            _forget(info, flag.id)
            return FeatureFlagSuccess(feature_flag=flag)

        return await perform(info, work)

    @strawberry.mutation(description="Delete a feature flag and its overrides (superusers).")
    async def delete_feature_flag(
        self, info: Info, input: DeleteFeatureFlagInput
    ) -> DeleteFeatureFlagResult:
        async def work(uow: UnitOfWork, viewer: User) -> DeleteFeatureFlagSuccess:
            flag = await _flag(uow, viewer, input.id)
            await FeatureFlagRepository(uow.session).delete_with_overrides(
                flag, expected_version=input.expected_version
            )
            _forget(info, flag.id)
            return DeleteFeatureFlagSuccess(deleted_id=input.id)

        return await perform(info, work)

    @strawberry.mutation(description="Fix a flag on or off for one user (superusers).")
    async def set_flag_override(
        self, info: Info, input: SetFlagOverrideInput
    ) -> SetFlagOverrideResult:
        async def work(uow: UnitOfWork, viewer: User) -> FlagOverrideSuccess:
            flag, user = await _pair(uow, viewer, input.flag_id, input.user_id)
            overrides = FlagOverrideRepository(uow.session)
            override = await overrides.find(flag.id, user.id)
            if override is None:
                override = await overrides.add(
                    FlagOverride(flag_id=flag.id, user_id=user.id, enabled=input.enabled)
                )
            else:
                await overrides.update(override, {"enabled": input.enabled})
            _forget(info, flag.id)
            return FlagOverrideSuccess(flag_override=override)

        return await perform(info, work)

    @strawberry.mutation(description="Let a user follow the flag's rollout again (superusers).")
    async def remove_flag_override(
        self, info: Info, input: RemoveFlagOverrideInput
    ) -> RemoveFlagOverrideResult:
        async def work(uow: UnitOfWork, viewer: User) -> RemoveFlagOverrideSuccess:
            flag, user = await _pair(uow, viewer, input.flag_id, input.user_id)
            overrides = FlagOverrideRepository(uow.session)
            override = await overrides.find(flag.id, user.id)
            if override is not None:
                await overrides.delete(override)
            _forget(info, flag.id)
            return RemoveFlagOverrideSuccess(removed=override is not None)

        return await perform(info, work)
