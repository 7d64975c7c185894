"""Entities declared once: a model, its GraphQL type, and who may see its rows.

    @entity(Tag, description="A label for posts; names are unique ignoring case.")
    class TagType(Audited):
        name: str

The declaration makes the strawberry type (named after the model unless told), lets it
recognise the model's rows (resolvers return ORM rows), and registers it. From the
registry come, for every entity and without another list to keep: its ``node(id:)``
lookup and its loader by id (both through its ``visible_to`` rule), the global id that
an audit entry's ``entityId`` gives, and, for soft-deletable entities, their ``delete``,
``restore`` and ``deleted`` fields (:mod:`gql.schema.lifecycle`).

Every module of ``gql.schema.types`` and ``gql.schema.resolvers`` is imported by
:func:`discover`, so declaring is all a new entity needs to join the schema. An entity
that adds fields to another's type says so from its own module (:func:`extend`): a
bookmark gives users their ``bookmarks`` without an edit to the user type.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, TypeVar
from uuid import UUID

import strawberry
from sqlalchemy import ColumnElement, Table, inspect
from strawberry.types.field import StrawberryField

from gql.engine.lean import COLUMN
from gql.schema.ids import to_global_id
from persistence.base import Base
from persistence.models import User

T = TypeVar("T", bound=type)
Visibility = Callable[[User | None], ColumnElement[bool]]


@dataclass(frozen=True, eq=False)
class Entity:
    model: type[Base]
    graphql_type: type
    name: str
    """The GraphQL type name, also the type named in the entity's global ids."""
    visible_to: Visibility | None
    """The rows a viewer may see, as SQL; None: every row."""
    rules: ModuleType | None
    """The domain module with the entity's ``editable`` rule (for delete and restore)."""


_ENTITIES: dict[type[Base], Entity] = {}


def entity(
    model: type[Base],
    *,
    description: str,
    name: str | None = None,
    visible_to: Visibility | None = None,
    rules: ModuleType | None = None,
) -> Callable[[T], T]:
    """Declare the decorated class the GraphQL type of ``model``; see the module."""

    def declare(cls: T) -> T:
        def is_type_of(_cls: type, obj: Any, _info: Any) -> bool:
            return isinstance(obj, model)

        cls.is_type_of = classmethod(is_type_of)  # type: ignore[attr-defined]
        type_name = name or model.__name__
        typed = strawberry.type(cls, name=type_name, description=description)
        _mark_columns(typed, model)
        _ENTITIES[model] = Entity(model, typed, type_name, visible_to, rules)
        return typed

    return declare


def _mark_columns(graphql_type: type, model: type[Base]) -> None:
    """Mark the type's plain fields that are columns of ``model`` as such
    (:data:`gql.engine.lean.COLUMN`): the rows it recognises are the model's."""
    columns = {attribute.key for attribute in inspect(model).column_attrs}
    for found in graphql_type.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        if found.base_resolver is None and found.python_name in columns:
            found.metadata = {**found.metadata, COLUMN: True}


def extend(graphql_type: type, **fields: StrawberryField) -> None:
    """Add ``fields`` to ``graphql_type``, an entity's type declared elsewhere."""
    extension = strawberry.type(type(f"{graphql_type.__name__}Extension", (), fields))
    definition = graphql_type.__strawberry_definition__  # type: ignore[attr-defined]
    definition.fields.extend(extension.__strawberry_definition__.fields)  # type: ignore[attr-defined]


@cache
def discover() -> None:
    """Import every type and resolver module, so that every declaration has run."""
    for package in ("gql.schema.types", "gql.schema.resolvers"):
        imported = importlib.import_module(package)
        for module in pkgutil.iter_modules(imported.__path__):
            importlib.import_module(f"{package}.{module.name}")


def entities() -> list[Entity]:
    discover()
    return list(_ENTITIES.values())


def entity_of(model: type[Base]) -> Entity:
    discover()
    return _ENTITIES[model]


@cache
def entity_at(table: Table) -> Entity:
    """The entity whose rows ``table`` holds."""
    return next(found for found in entities() if found.model.__table__ is table)


@cache
def entity_named(type_name: str) -> Entity | None:
    return next((e for e in entities() if e.name == type_name), None)


def key_type(model: type[Base]) -> type:
    """The Python type of a model's primary key: ``int`` (users) or ``UUID``."""
    python_type: type = inspect(model).primary_key[0].type.python_type
    return python_type


def entry_global_id(table: str, stored_id: str) -> str:
    """The global id of the object an audit entry of ``table`` is about: a row of the
    table, or, for a table whose rows belong to another's (``__audit_owner__``: a post's
    tags), the row it belongs to (the entry stores that one's id)."""
    model = _owning_model(table)
    found = _ENTITIES.get(model)
    key = int(stored_id) if key_type(model) is int else UUID(stored_id)
    return to_global_id(found.name if found else model.__name__, key)


@cache
def _owning_model(table: str) -> type[Base]:
    discover()
    mapper = next(m for m in Base.registry.mappers if m.local_table.name == table)  # type: ignore[attr-defined]
    model: type[Base] = mapper.class_
    owner = getattr(model, "__audit_owner__", None)
    if owner is None:
        return model
    [foreign_key] = mapper.columns[owner].foreign_keys
    return _owning_model(foreign_key.column.table.name)
