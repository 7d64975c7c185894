"""The same surface for every soft-deletable entity, from its declaration: ``delete…``
and ``restore…`` mutations and a ``deleted…`` list of what the viewer may restore, all
through the entity's domain rules (``editable``, ``restorable_by``:
:mod:`domain.lifecycle`). A resolver module places them among its own fields:

    @strawberry.type
    class Mutation:
        delete_comment = delete_field(CommentType)
        restore_comment = restore_field(CommentType)

Also here, the types these mutations are made of: ``Delete<Type>Success`` carrying the
deleted id, and inputs naming an object at the version last read.
"""

from __future__ import annotations

import functools
import operator
from functools import cache
from typing import Annotated, Any

import strawberry
from strawberry.types.field import StrawberryField

from domain import lifecycle
from gql.schema.context import Info
from gql.schema.entities import Entity, entities, key_type
from gql.schema.ids import int_key, uuid_key
from gql.schema.mutations import perform
from gql.schema.resolvers.listing import list_connection
from gql.schema.types.connection import Connection
from gql.schema.types.error import (
    AlreadyExistsErrorType,
    ConflictErrorType,
    ForbiddenErrorType,
    NotFoundErrorType,
)
from persistence.models import User
from persistence.pagination import SortKey
from persistence.repository import repository_for
from persistence.unit_of_work import UnitOfWork


def _union(name: str, *members: type) -> Any:
    """``Annotated[A | B | ..., strawberry.union(name)]``, of members known at run time."""
    return Annotated[functools.reduce(operator.or_, members), strawberry.union(name)]


def _entity(graphql_type: type) -> Entity:
    return next(found for found in entities() if found.graphql_type is graphql_type)


def _noun(name: str) -> str:
    """``FeatureFlag`` -> ``feature flag``."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()


@cache
def deleted_type(graphql_type: type) -> type:
    """``Delete<Type>Success``: the id of what was deleted."""
    name = f"Delete{graphql_type.__strawberry_definition__.name}Success"  # type: ignore[attr-defined]
    cls = type(name, (), {"__annotations__": {"deleted_id": strawberry.ID}})
    return strawberry.type(cls, name=name)


def version_input(name: str, description: str | None = None) -> type:
    """An input naming an object, optionally at the version last read."""
    cls = type(
        name,
        (),
        {
            "__annotations__": {"id": strawberry.ID, "expected_version": int | None},
            "expected_version": None,
        },
    )
    return strawberry.input(cls, name=name, description=description)


def _key(found: Entity, id: strawberry.ID) -> Any:
    return int_key(id, found.name) if key_type(found.model) is int else uuid_key(id, found.name)


def delete_field(
    graphql_type: type, *, description: str | None = None, input_type: type | None = None
) -> StrawberryField:
    """``delete<Type>(input: {id, expectedVersion})``: deleted softly."""
    found = _entity(graphql_type)
    noun = _noun(found.name)
    input_type = input_type or version_input(f"Delete{found.name}Input")
    deleted = deleted_type(graphql_type)
    result = _union(
        f"Delete{found.name}Result", deleted, NotFoundErrorType, ConflictErrorType,
        ForbiddenErrorType,
    )  # fmt: skip

    async def resolve(self: Any, info: Info, input: Any) -> Any:
        async def work(uow: UnitOfWork, viewer: User) -> Any:
            await lifecycle.delete(
                uow, viewer, found.rules, _key(found, input.id),  # type: ignore[arg-type]
                expected_version=input.expected_version,
            )  # fmt: skip
            info.context.loaders.forget()
            return deleted(deleted_id=input.id)

        return await perform(info, work)

    resolve.__annotations__ = {"info": Info, "input": input_type, "return": result}
    text = description or f"Delete a {noun}; `restore{found.name}` brings it back."
    field: StrawberryField = strawberry.mutation(resolver=resolve, description=text)
    return field


def restore_field(
    graphql_type: type,
    success: type,
    *,
    description: str | None = None,
    input_type: type | None = None,
) -> StrawberryField:
    """``restore<Type>(input: {id, expectedVersion})``: a deleted object back, as
    ``success`` (the entity's ``<Type>Success``, carrying it in its one field)."""
    found = _entity(graphql_type)
    noun = _noun(found.name)
    input_type = input_type or version_input(f"Restore{found.name}Input")
    field = next(iter(success.__annotations__))
    result = _union(
        f"Restore{found.name}Result", success, NotFoundErrorType, ConflictErrorType,
        ForbiddenErrorType, AlreadyExistsErrorType,
    )  # fmt: skip

    async def resolve(self: Any, info: Info, input: Any) -> Any:
        async def work(uow: UnitOfWork, viewer: User) -> Any:
            row = await lifecycle.restore(
                uow, viewer, found.rules, _key(found, input.id),  # type: ignore[arg-type]
                expected_version=input.expected_version,
            )  # fmt: skip
            info.context.loaders.forget()
            return success(**{field: row})

        return await perform(info, work)

    resolve.__annotations__ = {"info": Info, "input": input_type, "return": result}
    text = description or f"Bring a deleted {noun} back (author or superuser)."
    restore: StrawberryField = strawberry.mutation(resolver=resolve, description=text)
    return restore


def deleted_field(graphql_type: type, *, description: str | None = None) -> StrawberryField:
    """``deleted<Type>s(first, after)``: the deleted objects the viewer may restore,
    the most recently created first."""
    found = _entity(graphql_type)
    model: Any = found.model
    newest_first = [SortKey(model.created_at, descending=True)]

    async def resolve(
        self: Any, info: Info, first: int | None = None, after: str | None = None
    ) -> Any:
        viewer = info.context.viewer
        where = [model.deleted_at.is_not(None), found.rules.restorable_by(viewer)]  # type: ignore[union-attr]
        return await list_connection(
            info, repository_for(model), where, first=first, after=after, last=None,
            before=None, order_by=newest_first, include_deleted=True,
        )  # fmt: skip

    resolve.__annotations__ = {
        "info": Info, "first": int | None, "after": str | None,
        "return": Connection[graphql_type],  # type: ignore[valid-type]
    }  # fmt: skip
    text = description or (
        f"Deleted {_noun(found.name)}s you may restore (`restore{found.name}`), "
        "the most recently created first: your own, or every one for superusers."
    )
    deleted: StrawberryField = strawberry.field(resolver=resolve, description=text)
    return deleted
