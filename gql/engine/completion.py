"""Completing a whole subtree of a result in one pass, when every field in it reads its
row (see :mod:`gql.engine.lean`).

graphql-core completes a value level by level: for every object it collects the
selected fields, makes a path for each, executes each one, dispatches on its type to
complete it, and does all of it again for every item of a list. For a page of posts
with their authors and tags that machinery, not the data, was most of the work.

A plan is compiled per selection set, once per request (graphql-core memoizes the
collected fields per request too): nested functions that build the result dicts and
lists directly. A plan declines a selection it cannot complete alone (an argument, an
interface or union, an async resolver, ``@stream`` or ``@defer``); a running plan
raises :class:`~gql.engine.lean.FallbackError` at anything only graphql-core should decide (a null
where the schema says non-null, an awaitable, an object of another type, an
exception), and graphql-core then completes that value the ordinary way, with exactly
the errors it would have raised. Reads are pure, so doing one twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLOutputType
from graphql.execution.collect_fields import CollectedFields, FieldDetailsList

from gql.engine.lean import FallbackError, LeanFields, Read

Complete = Callable[[Any, Any], Any]
"""``(value, context) -> completed``: the value's part of the response."""

_INCREMENTAL = frozenset({"defer", "stream"})


class Planner:
    """One request's plans; ``collect`` and ``is_awaitable`` are its execution
    context's (memoized) ``collect_subfields`` and ``is_awaitable``."""

    def __init__(
        self,
        fields: LeanFields,
        collect: Callable[[GraphQLObjectType, FieldDetailsList], CollectedFields],
        is_awaitable: Callable[[Any], bool],
    ) -> None:
        self._fields = fields
        self._collect = collect
        self._is_awaitable = is_awaitable
        # Keyed by the list's identity, as graphql-core does; the entry keeps it alive.
        self._plans: dict[tuple[GraphQLOutputType, int], tuple[FieldDetailsList, Any]] = {}

    def plan(self, return_type: GraphQLOutputType, selection: FieldDetailsList) -> Complete | None:
        """How to complete a value of ``return_type`` for ``selection``, if a plan can."""
        key = (return_type, id(selection))
        cached = self._plans.get(key)
        if cached is None:
            cached = self._plans[key] = (selection, self._value(return_type, selection))
        plan: Complete | None = cached[1]
        return plan

    def _value(self, return_type: GraphQLOutputType, selection: FieldDetailsList) -> Any:
        nullable = not isinstance(return_type, GraphQLNonNull)
        output = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        if isinstance(output, GraphQLList):
            item = self.plan(output.of_type, selection)
            return None if item is None else _list(item, nullable)
        if isinstance(output, GraphQLObjectType):
            fields = self._object_fields(output, selection)
            if fields is None:
                return None
            return _object(fields, output.is_type_of, self._is_awaitable, nullable)
        return None

    def _object_fields(
        self, object_type: GraphQLObjectType, selection: FieldDetailsList
    ) -> list[tuple[str, Complete]] | None:
        grouped, defer_usages, *_ = self._collect(object_type, selection)
        if defer_usages:
            return None
        leaves = self._fields.leaves.get(object_type.name, {})
        reads = self._fields.reads.get(object_type.name, {})
        fields: list[tuple[str, Complete]] = []
        for response_name, sub_selection in grouped.items():
            node = sub_selection[0].node
            name = node.name.value
            if any(
                d.name.value in _INCREMENTAL for f in sub_selection for d in f.node.directives or ()
            ):
                return None
            if name == "__typename":
                fields.append((response_name, _constant(object_type.name)))
            elif (leaf := leaves.get(name)) is not None:
                fields.append((response_name, leaf))
            elif (read := reads.get(name)) is not None:
                value = self.plan(object_type.fields[name].type, sub_selection)
                if value is None:
                    return None
                fields.append((response_name, _field(read, value)))
            else:
                return None
        return fields


def _constant(value: str) -> Complete:
    return lambda _row, _context: value


def _field(read: Read, complete: Complete) -> Complete:
    return lambda row, context: complete(read(row, context), context)


def _list(item: Complete, nullable: bool) -> Complete:
    def complete_list(value: Any, context: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise FallbackError
        if not isinstance(value, list | tuple):
            raise FallbackError
        return [item(v, context) for v in value]

    return complete_list


def _object(
    fields: list[tuple[str, Complete]],
    is_type_of: Callable[[Any, Any], Any] | None,
    is_awaitable: Callable[[Any], bool],
    nullable: bool,
) -> Complete:
    def complete_object(row: Any, context: Any) -> Any:
        if row is None:
            if nullable:
                return None
            raise FallbackError
        # The type checks graphql-core makes (is_type_of takes no info here: ours and
        # strawberry's ignore it, and one that needed it would fall back). A row of the
        # type is no awaitable, so the common case makes one check.
        if is_type_of is not None and is_type_of(row, None):
            return {name: complete(row, context) for name, complete in fields}
        if is_awaitable(row):
            if isinstance(row, Coroutine):
                row.close()  # the ordinary way calls the resolver again and awaits that
            raise FallbackError
        if is_type_of is not None:
            raise FallbackError
        return {name: complete(row, context) for name, complete in fields}

    return complete_object
