"""The same surface for every soft-deletable entity, from its declaration: ``delete…``
and ``restore…`` mutations and a ``deleted…`` list of what the viewer may restore, all
through the entity's domain rules (``editable``, ``restorable_by``:
:mod:`domain.lifecycle`). The schema adds them (:func:`lifecycle_fields`); a resolver
module that wants another description or input places them among its own fields:

    @strawberry.type
    class Mutation:
        delete_comment = delete_field(CommentType, description="...")

Also here, the types these mutations are made of: ``Delete<Type>Success`` carrying the
deleted id, and inputs naming an object at the version last read.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import strawberry
from strawberry.types.field import StrawberryField
from strawberry.utils.str_converters import to_camel_case

from domain import lifecycle
from gql.schema.commands import command_field, entity_typed, key, union
from gql.schema.context import Info
from gql.schema.entities import entities
from gql.schema.mutations import perform
from gql.schema.resolvers.listing import list_connection
from gql.schema.types.connection import Connection
from gql.schema.types.error import (
    AlreadyExistsErrorType,
    ConflictErrorType,
    ForbiddenErrorType,
    NotFoundErrorType,
)
from persistence.mixins import SoftDeleteMixin
from persistence.models import User
from persistence.pagination import SortKey
from persistence.repository import repository_for
from persistence.unit_of_work import UnitOfWork


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


def delete_field(
    graphql_type: type, *, description: str | None = None, input_type: type | None = None
) -> StrawberryField:
    """``delete<Type>(input: {id, expectedVersion})``: deleted softly."""
    found = entity_typed(graphql_type)
    noun = _noun(found.name)
    input_type = input_type or version_input(f"Delete{found.name}Input")
    deleted = deleted_type(graphql_type)
    result = union(
        f"Delete{found.name}Result", deleted, NotFoundErrorType, ConflictErrorType,
        ForbiddenErrorType,
    )  # fmt: skip

    async def resolve(self: Any, info: Info, input: Any) -> Any:
        async def work(uow: UnitOfWork, viewer: User) -> Any:
            await lifecycle.delete(
                uow, viewer, found.rules, key(found, input.id),  # type: ignore[arg-type]
                expected_version=input.expected_version,
            )  # fmt: skip
            info.context.loaders.forget()
            return deleted(deleted_id=input.id)

        return await perform(info, work)

    resolve.__annotations__ = {"info": Info, "input": input_type, "return": result | None}
    text = description or f"Delete a {noun}; `restore{found.name}` brings it back."
    field: StrawberryField = strawberry.mutation(resolver=resolve, description=text)
    return field


def restore_field(
    graphql_type: type,
    success: type | None = None,
    *,
    description: str | None = None,
    input_type: type | None = None,
) -> StrawberryField:
    """``restore<Type>(input: {id, expectedVersion})``: a deleted object back, as
    ``success`` (the entity's ``<Type>Success``, carrying it in its one field; derived
    by default)."""
    found = entity_typed(graphql_type)

    async def restore(
        uow: UnitOfWork, actor: User, key: Any, *, expected_version: int | None = None
    ) -> Any:
        rules: Any = found.rules
        return await lifecycle.restore(uow, actor, rules, key, expected_version=expected_version)

    restore.__name__ = f"restore_{_noun(found.name).replace(' ', '_')}"
    return command_field(
        restore, graphql_type,
        NotFoundErrorType, ConflictErrorType, ForbiddenErrorType, AlreadyExistsErrorType,
        description=description
        or f"Bring back a deleted {_noun(found.name)} listed in `deleted{found.name}s`.",
        input_type=input_type or version_input(f"Restore{found.name}Input"),
        success=success,
    )  # fmt: skip


def deleted_field(graphql_type: type, *, whose: str | None = None) -> StrawberryField:
    """``deleted<Type>s(first, after)``: the deleted objects the viewer may restore,
    the most recently created first; ``whose`` says which those are, for the docs."""
    found = entity_typed(graphql_type)
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
    text = (
        f"Deleted {_noun(found.name)}s you may restore (`restore{found.name}`), "
        f"the most recently created first{f': {whose}' if whose else ''}."
    )
    deleted: StrawberryField = strawberry.field(resolver=resolve, description=text)
    return deleted


def lifecycle_fields(defined: set[str]) -> tuple[list[type], list[type]]:
    """``Mutation`` and ``Query`` types (none if empty) with the lifecycle fields of
    every soft-deletable entity that are not among the ``defined`` field names."""
    mutations: dict[str, StrawberryField] = {}
    queries: dict[str, StrawberryField] = {}
    for found in entities():
        if not issubclass(found.model, SoftDeleteMixin):
            continue
        noun = _noun(found.name).replace(" ", "_")
        surface: list[tuple[dict[str, StrawberryField], str, Callable[[type], StrawberryField]]]
        surface = [
            (mutations, f"delete_{noun}", delete_field),
            (mutations, f"restore_{noun}", restore_field),
            (queries, f"deleted_{noun}s", deleted_field),
        ]
        for fields, name, make in surface:
            if to_camel_case(name) not in defined:
                fields[name] = make(found.graphql_type)
    return (
        [strawberry.type(type("LifecycleMutation", (), mutations))] if mutations else [],
        [strawberry.type(type("LifecycleQuery", (), queries))] if queries else [],
    )
