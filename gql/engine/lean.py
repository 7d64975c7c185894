"""Which fields only read their parent row, and how: decided once per schema.

A field *reads its row* when it takes no arguments and its value comes from the parent
row alone (and the request context): a plain attribute, a mapped column (:data:`COLUMN`),
or a field whose strawberry definition carries a :data:`LEAN` function. Such fields can
skip most of what graphql-core and strawberry do for a field (see
:mod:`gql.engine.execution`). Fields with arguments, async resolvers, permissions or
field extensions are not among them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLString,
    Undefined,
    is_leaf_type,
)
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info

LEAN: Final = "auditql.lean"
"""Strawberry field metadata key: a function ``(row, context, type_name)`` that
computes the field's value (or its awaitable) from the parent row, the request context
and the name of the parent's GraphQL type. The field's strawberry resolver returns
:func:`call_lean` of the same function, so that both ways give the same answer."""

COLUMN: Final = "auditql.column"
"""Strawberry field metadata key, true on a plain (attribute) field whose rows are ORM
entities and whose attribute is one of their mapped columns. Its value is then read
from the row's ``__dict__``, where SQLAlchemy keeps loaded values and where reading the
attribute finds it too, at a fifth of the cost of that descriptor call."""

LeanFunction = Callable[[Any, Any, str], Any]
Read = Callable[[Any, Any], Any]
"""``(row, context) -> value``."""
Leaf = Callable[[Any, Any], Any]
"""``(row, context) -> serialized value`` of one scalar or enum field of one object
type; :class:`FallbackError` for anything else than a clean value (an exception, a null
where the schema says non-null, a value the scalar refuses)."""


class FallbackError(Exception):
    """A shortcut met something only graphql-core's ordinary path should decide."""


def call_lean(function: LeanFunction, root: Any, info: Info[Any, Any]) -> Any:
    """What a strawberry resolver returns for a field whose value is ``function``'s."""
    return function(root, info.context, info._raw_info.parent_type.name)


def leaf(read: Read, output: GraphQLScalarType | GraphQLEnumType, nullable: bool,
         column: str | None = None) -> Leaf:  # fmt: skip
    """The :data:`Leaf` of a field that ``read``s its row. For a mapped ``column``, a
    loaded value is taken from the row's ``__dict__`` without calling ``read``; a
    ``String``'s str value is passed as it is (``serialize`` would return it)."""
    serialize = output.serialize
    string = output is GraphQLString

    def complete(row: Any, context: Any) -> Any:
        try:
            if column is None:
                raw = read(row, context)
            else:
                try:
                    raw = row.__dict__[column]
                except (AttributeError, KeyError):  # not loaded, or not an entity
                    raw = read(row, context)
            if raw is None:
                if nullable:
                    return None
                raise FallbackError
            if string and type(raw) is str:
                return raw
            serialized = serialize(raw)
        except Exception as exc:
            raise FallbackError from exc
        if serialized is None or serialized is Undefined:
            raise FallbackError
        return serialized

    return complete


@dataclass(frozen=True)
class LeanFields:
    """Per object type name and field name: the leaves, and the other fields that read
    their row (objects and lists)."""

    leaves: dict[str, dict[str, Leaf]] = field(default_factory=dict)
    reads: dict[str, dict[str, Read]] = field(default_factory=dict)


def lean_fields(schema: strawberry.Schema) -> LeanFields:
    found = LeanFields()
    for graphql_type in schema._schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name.startswith("__"):
            continue
        for name, graphql_field in graphql_type.fields.items():
            read = _read(graphql_field, graphql_type.name)
            if read is None or graphql_field.args:
                continue
            nullable = not isinstance(graphql_field.type, GraphQLNonNull)
            output = graphql_field.type if nullable else graphql_field.type.of_type
            if is_leaf_type(output):
                column = _column(graphql_field)
                found.leaves.setdefault(graphql_type.name, {})[name] = leaf(
                    read, output, nullable, column
                )
            else:
                found.reads.setdefault(graphql_type.name, {})[name] = read
    return found


def _read(graphql_field: GraphQLField, type_name: str) -> Read | None:
    """How ``graphql_field`` of ``type_name`` reads its row, if it needs nothing else."""
    definition: StrawberryField | None = graphql_field.extensions.get("strawberry-definition")
    if definition is None or definition.extensions:
        return None
    lean: LeanFunction | None = definition.metadata.get(LEAN)
    if lean is not None:
        return lambda row, context: lean(row, context, type_name)
    if getattr(graphql_field.resolve, "_is_default", False):  # strawberry's attribute resolver
        attribute = definition.python_name
        return lambda row, _context: getattr(row, attribute)
    return None


def _column(graphql_field: GraphQLField) -> str | None:
    """The mapped column a plain field is (:data:`COLUMN`), if it is one."""
    definition: StrawberryField = graphql_field.extensions["strawberry-definition"]
    return definition.python_name if definition.metadata.get(COLUMN) else None
