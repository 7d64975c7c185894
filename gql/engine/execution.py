"""A leaner way through graphql-core for the fields that only read their parent row.

graphql-core executes every field alike: it looks the field up, builds a resolve info,
coerces arguments, calls strawberry's resolver wrapper (which builds strawberry's own
info and argument lists), then dispatches on the return type to complete the value. For
a title, a timestamp or an id that is ten times the cost of reading the attribute, and
a page of 50 posts with their authors and tags has about 730 fields: that was most of
a read's CPU time.

Three shortcuts for the fields :mod:`gql.engine.lean` finds:

- A value whose whole selection reads rows (a page of posts with their authors and
  tags) is completed in one pass by a plan (:mod:`gql.engine.completion`).
- Otherwise, a leaf (a scalar or an enum) is read and serialized directly, with no
  path, info or completion.
- Otherwise, an object or list field keeps graphql-core's completion, but its resolver
  reads the row directly instead of going through strawberry's wrapper.

Whenever a shortcut meets something it should not decide (an exception, a null where
the schema says non-null, an awaitable), graphql-core does that part again the ordinary
way and raises the located error it would have raised. None of the shortcuts applies
while an extension wraps resolvers (a ``resolve`` hook must see every field).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import strawberry
from graphql import GraphQLObjectType, GraphQLOutputType, GraphQLResolveInfo
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gql.engine.compat import check_versions
from gql.engine.completion import Planner
from gql.engine.lean import FallbackError, LeanFields, Read, lean_fields


def lean_execution(schema: strawberry.Schema) -> type[StrawberryGraphQLCoreExecutionContext]:
    """An execution context class for ``schema`` that takes the shortcuts above, after
    pointing the resolvers of the object and list fields that read their row at it.
    Refuses graphql-core and strawberry releases it was not written for."""
    check_versions()
    found = lean_fields(schema)
    for type_name, reads in found.reads.items():
        fields = cast(GraphQLObjectType, schema._schema.type_map[type_name]).fields
        for name, read in reads.items():
            fields[name].resolve = _resolver(read)
    unwrapped = LeanFields()

    class LeanExecutionContext(StrawberryGraphQLCoreExecutionContext):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            wrapped = self.middleware_manager is not None and self.middleware_manager.middlewares
            self.lean = unwrapped if wrapped else found
            self.planner = Planner(self.lean, self.collect_subfields, self.is_awaitable)

        def execute_field(
            self,
            parent_type: GraphQLObjectType,
            source: Any,
            field_details_list: FieldDetailsList,
            path: Path,
            position_context: Any,
        ) -> Any:
            fields = self.lean.leaves.get(parent_type.name)
            if fields is not None:
                leaf = fields.get(field_details_list[0].node.name.value)
                if leaf is not None:
                    try:
                        return leaf(source, self.context_value)
                    except FallbackError:
                        pass
            return super().execute_field(
                parent_type, source, field_details_list, path, position_context
            )

        def complete_value(
            self,
            return_type: GraphQLOutputType,
            field_details_list: FieldDetailsList,
            info: GraphQLResolveInfo[Any],
            path: Path,
            result: Any,
            position_context: Any,
        ) -> Any:
            plan = self.planner.plan(return_type, field_details_list)
            if plan is not None:
                try:
                    return plan(result, self.context_value)
                except Exception:  # FallbackError, or a read that failed: the ordinary way
                    pass
            return super().complete_value(
                return_type, field_details_list, info, path, result, position_context
            )

    return LeanExecutionContext


def _resolver(read: Read) -> Callable[..., Any]:
    def resolve(row: Any, info: GraphQLResolveInfo[Any]) -> Any:
        return read(row, info.context)

    return resolve
