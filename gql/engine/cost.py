"""The cost limit: how many objects an operation may ask for, computed before it runs.

Every list multiplies what is selected inside it: a connection by its page size
(``first`` or ``last``, from the document or its variables, else the field's default),
a plain list by the bound its field declares (``MAX_ITEMS`` in its strawberry metadata:
a number, or the name of the list argument whose length it is). Each object the
response can hold counts one, but for the wrappers of a list (connections and their
edges). So ``posts(first: 100) { edges { node { createdBy { posts(first: 100) { edges
{ node { id } } } } } } }`` costs 100 posts + 100 authors + 100 x 100 posts = 10,200.
Fragments count as if every one of them applied: an abstract field is charged for the
most a document could ask of it.

An operation over ``max_objects`` is refused with ``COST_LIMIT_EXCEEDED`` before any
resolver runs (the extension answers in place of execution), so it sends no SQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_operation_ast,
)
from graphql.execution import ExecutionResult
from strawberry.extensions import SchemaExtension

from gql.errors import ClientError
from gql.schema.types.connection import DEFAULT_PAGE_SIZE
from persistence.pagination import MAX_PAGE_SIZE

MAX_ITEMS: Final = "auditql.max_items"
"""Strawberry field metadata key: the most items a plain list field returns, or the
name of its list argument whose length that is (``nodes(ids:)``)."""


class CostLimitError(ClientError):
    code = "COST_LIMIT_EXCEEDED"


def _named(type_: GraphQLOutputType) -> tuple[GraphQLNamedType, bool]:
    """The named type under non-null and list wrappers, and whether a list wraps it."""
    is_list = False
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        is_list = is_list or isinstance(type_, GraphQLList)
        type_ = type_.of_type
    return type_, is_list


def is_connection(type_: GraphQLNamedType) -> bool:
    return isinstance(type_, GraphQLObjectType) and {"edges", "pageInfo"} <= set(type_.fields)


def declared_bound(field: GraphQLField) -> int | str | None:
    definition = (field.extensions or {}).get("strawberry-definition")
    bound = getattr(definition, "metadata", {}).get(MAX_ITEMS)
    return bound if isinstance(bound, int | str) else None


class Cost:
    """The objects one operation of one document may return, given its variables."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._variables = variables

    def of(self, operation: OperationDefinitionNode) -> int:
        root = self._schema.get_root_type(operation.operation)
        return 0 if root is None else self._selections(operation.selection_set, root, 1, 0)

    def _selections(
        self, selections: SelectionSetNode, parent: GraphQLNamedType, times: int, page: int
    ) -> int:
        total = 0
        for node in self._fields(selections, set()):
            if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
                continue
            field = parent.fields.get(node.name.value)
            if field is None or node.selection_set is None:  # __typename, or a leaf
                continue
            child, is_list = _named(field.type)
            edges = node.name.value == "edges" and is_connection(parent)
            items = times
            if is_connection(child):
                page = self._page_size(node, field)
            elif edges:
                items = times * page
            elif is_list:
                items = times * self._bound(node, field)
            if not (edges or is_connection(child)):  # a list's wrappers are no objects
                total += items
            total += self._selections(node.selection_set, child, items, page)
        return total

    def _fields(self, selections: SelectionSetNode, seen: set[str]) -> Iterator[FieldNode]:
        """The fields of a selection set, through every fragment in it (each once)."""
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from self._fields(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self._fragments.get(selection.name.value)
                if fragment is not None and fragment.name.value not in seen:
                    yield from self._fields(fragment.selection_set, seen | {fragment.name.value})

    def _page_size(self, node: FieldNode, field: GraphQLField) -> int:
        for name in ("first", "last"):
            value = self._argument(node, name)
            if isinstance(value, int):
                return max(0, min(value, MAX_PAGE_SIZE))  # a larger page is refused anyway
        default = field.args["first"].default_value if "first" in field.args else None
        return default if isinstance(default, int) else DEFAULT_PAGE_SIZE

    def _bound(self, node: FieldNode, field: GraphQLField) -> int:
        bound = declared_bound(field)
        if isinstance(bound, str):
            given = self._argument(node, bound)
            return len(given) if isinstance(given, list) else 0
        assert bound is not None, f"{node.name.value} declares no MAX_ITEMS"
        return bound

    def _argument(self, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                return self._variables.get(value.name.value)
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, ListValueNode):
                return list(value.values)
        return None


def cost_limit(max_objects: int) -> type[SchemaExtension]:
    """An extension refusing operations that may return more than ``max_objects``."""

    class CostLimit(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            context = self.execution_context
            document = context.graphql_document
            operation = get_operation_ast(document, context.operation_name) if document else None
            if document is not None and operation is not None:
                fragments = {
                    definition.name.value: definition
                    for definition in document.definitions
                    if isinstance(definition, FragmentDefinitionNode)
                }
                objects = Cost(context.schema._schema, fragments, context.variables or {}).of(
                    operation
                )
                if objects > max_objects:
                    refusal = CostLimitError(
                        f"This operation could return {objects:,} objects; at most "
                        f"{max_objects:,} are allowed. Ask for smaller pages or fewer "
                        "nested lists."
                    )
                    context.result = ExecutionResult(data=None, errors=[refusal])
            yield

    return CostLimit
