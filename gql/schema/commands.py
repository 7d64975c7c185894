"""A mutation field made from a domain command, for the ordinary case:

    create_bookmark = command_field(
        bookmarks.create_bookmark, BookmarkType,
        ValidationErrorType, NotFoundErrorType, AlreadyExistsErrorType,
        description="Bookmark a post you can see.",
    )

Its input type, ``<Command>Input`` (``CreateBookmarkInput``), is the command's signature
after ``(uow, actor)``: a ``key`` parameter becomes ``id: ID!``, the entity's global id;
a ``<name>_id`` that is a foreign key of the entity's model becomes an ``ID`` of the
entity it points at (a malformed or foreign id is a ``BAD_USER_INPUT`` naming it); any
other parameter keeps its type, and one that may be None may be left out.

The command runs in one unit of work with the viewer as actor (:func:`perform`). The
result is the union ``<Command>Result`` of ``<Type>Success`` and the given error types;
the request's loaders then forget what they loaded, since the command changed it, and
serve the written row for the rest of the request.
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Annotated, Any, get_args, get_type_hints

import strawberry
from strawberry.types.field import StrawberryField

from gql.schema.context import Info
from gql.schema.entities import Entity, entities, entity_at, key_type
from gql.schema.ids import int_key, uuid_key
from gql.schema.mutations import perform
from gql.schema.types.error import camel
from persistence.models import User
from persistence.unit_of_work import UnitOfWork


def union(name: str, *members: type) -> Any:
    """``Annotated[A | B | ..., strawberry.union(name)]``, of members known at run time."""
    return Annotated[functools.reduce(operator.or_, members), strawberry.union(name)]


def entity_typed(graphql_type: type) -> Entity:
    """The entity whose GraphQL type ``graphql_type`` is."""
    return next(found for found in entities() if found.graphql_type is graphql_type)


def key(found: Entity, id: strawberry.ID, argument: str = "id") -> Any:
    """The primary key a global id of ``found`` names."""
    if key_type(found.model) is int:
        return int_key(id, found.name, argument)
    return uuid_key(id, found.name, argument)


@cache
def success_type(graphql_type: type) -> type:
    """``<Type>Success``: the object a mutation wrote, in a field named after its type
    (``BookmarkSuccess.bookmark``)."""
    name = graphql_type.__strawberry_definition__.name  # type: ignore[attr-defined]
    field = name[0].lower() + name[1:]
    cls = type(f"{name}Success", (), {"__annotations__": {field: graphql_type}})
    return strawberry.type(cls, name=f"{name}Success")


def _input_type(name: str, command: Callable[..., Any]) -> type:
    """``<name>Input``, from the command's parameters (see the module)."""
    hints = get_type_hints(command)
    required: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    for parameter in list(inspect.signature(command).parameters)[2:]:
        hint, field = hints[parameter], "id" if parameter == "key" else parameter
        if field == "id" or field.endswith("_id"):
            hint = strawberry.ID | None if type(None) in get_args(hint) else strawberry.ID
        (optional if type(None) in get_args(hint) else required)[field] = hint
    cls = type(name, (), {"__annotations__": required | optional, **dict.fromkeys(optional)})
    return strawberry.input(cls, name=f"{name}Input")


def _arguments(found: Entity, input: Any) -> tuple[list[Any], dict[str, Any]]:
    """The command's key (if the input names the object) and keyword arguments."""
    keys: list[Any] = []
    named: dict[str, Any] = {}
    columns = found.model.__table__.columns
    for field in input.__strawberry_definition__.fields:
        name, value = field.python_name, getattr(input, field.python_name)
        if name == "id":
            keys.append(key(found, value))
            continue
        if name in columns and columns[name].foreign_keys and value is not None:
            [foreign_key] = columns[name].foreign_keys
            value = key(entity_at(foreign_key.column.table), value, camel(name))
        named[name] = value
    return keys, named


def command_field(
    command: Callable[..., Awaitable[Any]],
    graphql_type: type,
    *errors: type,
    description: str,
    input_type: type | None = None,
    success: type | None = None,
    fields: dict[str, str] | None = None,
) -> StrawberryField:
    """``<field>(input: <Command>Input!)``: ``command`` run as described in the module.
    An explicit ``input_type`` (one with descriptions and defaults of its own, or shared
    by several mutations) replaces the derived one: its ``id`` is the key, its other
    fields the command's keyword arguments by name; an explicit ``success`` type, one
    that mutations written out in full return too, replaces ``<Type>Success``.
    ``fields`` renames columns in the errors (see :func:`perform`)."""
    success = success or success_type(graphql_type)
    [field] = success.__annotations__
    name = "".join(word.title() for word in command.__name__.split("_"))
    input_type = input_type or _input_type(name, command)
    result = union(f"{name}Result", success, *errors)

    async def resolve(self: Any, info: Info, input: Any) -> Any:
        found = entity_typed(graphql_type)

        async def work(uow: UnitOfWork, viewer: User) -> Any:
            keys, named = _arguments(found, input)
            row = await command(uow, viewer, *keys, **named)
            loaders = info.context.loaders
            loaders.forget()
            loaders.by_id(found.model).prime(row.id, row)
            return success(**{field: row})

        return await perform(info, work, fields=fields)

    resolve.__annotations__ = {"info": Info, "input": input_type, "return": result | None}
    mutation: StrawberryField = strawberry.mutation(resolver=resolve, description=description)
    return mutation
