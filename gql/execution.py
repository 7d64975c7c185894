"""A leaner way through graphql-core for the fields that only read their parent row.

graphql-core executes every field alike: it looks the field up, builds a resolve info,
coerces arguments, calls strawberry's resolver wrapper (which builds strawberry's own
info and argument lists), then dispatches on the return type to complete the value. For
a title, a timestamp or an id that is ten times the cost of reading the attribute, and
a page of 50 posts with their authors and tags has about 550 such fields: they were
most of a read's CPU time.

Two shortcuts, both decided once per schema:

- A *leaf* is a field without arguments whose value is a scalar or an enum computed
  from the parent row alone (a plain attribute, or a field whose strawberry definition
  carries a :data:`LEAN` function). The executor reads and serializes it directly, with
  no path, info or completion. If anything is off (an exception, a null where the
  schema says non-null, a scalar that refuses the value), it executes the field again
  the ordinary way, which raises the located error graphql-core would have raised:
  reads are pure, so doing one twice changes nothing.
- Any other such field (an object or a list: an author, a post's tags, a connection's
  edges) keeps graphql-core's completion, but its resolver reads the row directly
  instead of going through strawberry's wrapper.

Neither applies while an extension wraps resolvers (a ``resolve`` hook must see every
field), and strawberry's wrapper stays in place for everything else: arguments, async
resolvers, permissions, field extensions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import strawberry
from graphql import (
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info

LEAN: Final = "auditql.lean"
"""Strawberry field metadata key: a function ``(row, context, type_name)`` that
computes the field's value (or its awaitable) from the parent row, the request context
and the name of the parent's GraphQL type. The field's strawberry resolver returns
:func:`call_lean` of the same function, so that both ways give the same answer."""

LeanFunction = Callable[[Any, Any, str], Any]
Read = Callable[[Any, Any], Any]

_FALLBACK: Final = object()


class Leaf:
    """How to read and serialize one leaf field of one object type."""

    __slots__ = ("nullable", "read", "serialize")

    def __init__(self, read: Read, serialize: Callable[[Any], Any], nullable: bool) -> None:
        self.read = read
        self.serialize = serialize
        self.nullable = nullable

    def value(self, row: Any, context: Any) -> Any:
        """The serialized value, or ``_FALLBACK`` when the ordinary way must decide."""
        try:
            raw = self.read(row, context)
            if raw is None:
                return None if self.nullable else _FALLBACK
            serialized = self.serialize(raw)
        except Exception:
            return _FALLBACK
        return _FALLBACK if serialized is None or serialized is Undefined else serialized


Leaves = dict[str, dict[str, Leaf]]


def lean_execution(schema: strawberry.Schema) -> type[StrawberryGraphQLCoreExecutionContext]:
    """An execution context class for ``schema`` that takes the shortcuts above, after
    pointing the object fields with a :data:`LEAN` function at it."""
    leaves: Leaves = {}
    for graphql_type in schema._schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name.startswith("__"):
            continue
        for name, field in graphql_type.fields.items():
            read = _read(field, graphql_type.name)
            if read is None:
                continue
            output = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if field.args:
                continue
            if is_leaf_type(output):
                nullable = not isinstance(field.type, GraphQLNonNull)
                leaves.setdefault(graphql_type.name, {})[name] = Leaf(
                    read, output.serialize, nullable
                )
            else:
                field.resolve = _resolver(read)

    class LeanExecutionContext(StrawberryGraphQLCoreExecutionContext):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            wrapped = self.middleware_manager is not None and self.middleware_manager.middlewares
            self.leaves: Leaves = {} if wrapped else leaves

        def execute_field(
            self,
            parent_type: GraphQLObjectType,
            source: Any,
            field_details_list: FieldDetailsList,
            path: Path,
            position_context: Any,
        ) -> Any:
            fields = self.leaves.get(parent_type.name)
            if fields is not None:
                leaf = fields.get(field_details_list[0].node.name.value)
                if leaf is not None:
                    value = leaf.value(source, self.context_value)
                    if value is not _FALLBACK:
                        return value
            return super().execute_field(
                parent_type, source, field_details_list, path, position_context
            )

    return LeanExecutionContext


def call_lean(function: LeanFunction, root: Any, info: Info[Any, Any]) -> Any:
    """What a strawberry resolver returns for a field whose value is ``function``'s."""
    return function(root, info.context, info._raw_info.parent_type.name)


def _definition(field: GraphQLField) -> StrawberryField:
    definition: StrawberryField = field.extensions["strawberry-definition"]
    return definition


def _read(field: GraphQLField, type_name: str) -> Read | None:
    """How ``field`` of ``type_name`` reads its parent row, if it needs nothing else."""
    if "strawberry-definition" not in field.extensions:
        return None
    definition = _definition(field)
    if definition.extensions:
        return None
    lean: LeanFunction | None = definition.metadata.get(LEAN)
    if lean is not None:
        return lambda row, context: lean(row, context, type_name)
    if getattr(field.resolve, "_is_default", False):  # strawberry's attribute resolver
        attribute = definition.python_name
        return lambda row, _context: getattr(row, attribute)
    return None


def _resolver(read: Read) -> Callable[..., Any]:
    def resolve(row: Any, info: GraphQLResolveInfo[Any]) -> Any:
        return read(row, info.context)

    return resolve
