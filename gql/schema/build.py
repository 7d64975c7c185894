"""The schema: every aggregate's resolvers module, merged, every declared entity, and
the policies."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from datetime import datetime
from types import ModuleType
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.utils.str_converters import to_camel_case

from gql.engine.cost import cost_limit
from gql.engine.document_cache import DocumentCache
from gql.engine.document_limits import document_limits
from gql.engine.error_policy import ErrorPolicy
from gql.engine.execution import lean_execution
from gql.engine.redaction import SchemaNames
from gql.live.transport import WebSocketOperations
from gql.schema import resolvers
from gql.schema.entities import discover, entities
from gql.schema.lifecycle import lifecycle_fields
from gql.schema.resolvers.node import node_query
from gql.schema.scalars import JSON, DateTime, JSONScalar
from gql.schema.types.connection import describe_paging
from gql.settings import Settings

# Resolver modules are discovered, not listed. These come first, in the order their
# fields have always had in schema.graphql; any other follows, by name.
_FIRST = ("user", "auth", "post", "comment", "tag", "feature_flag", "audit_log")


def resolver_modules() -> list[ModuleType]:
    """Every module of ``gql.schema.resolvers``, in the order their fields are printed."""
    discover()
    names = [module.name for module in pkgutil.iter_modules(resolvers.__path__)]
    names.sort(key=lambda name: (_FIRST.index(name) if name in _FIRST else len(_FIRST), name))
    return [importlib.import_module(f"{resolvers.__name__}.{name}") for name in names]


class Schema(strawberry.Schema):
    redaction: SchemaNames | None = None
    """In production, what error messages must not name (:mod:`gql.engine.redaction`)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are logged by ErrorPolicy, once, with the request id; strawberry's
        default would log every client error as a server error."""


def build_schema(
    settings: Settings, observers: Sequence[Callable[[], SchemaExtension]] = ()
) -> strawberry.Schema:
    """The schema. ``observers`` are extension factories that must see the final
    errors (the operation log): they wrap the error policy."""
    modules = resolver_modules()
    queries = [node_query(), *(m.Query for m in modules if hasattr(m, "Query"))]
    mutations = [m.Mutation for m in modules if hasattr(m, "Mutation")]
    defined = {
        field.graphql_name or to_camel_case(field.python_name)
        for root in (*queries, *mutations)
        for field in root.__strawberry_definition__.fields
    }
    derived_mutations, derived_queries = lifecycle_fields(defined)
    query = merge_types("Query", (*queries, *derived_queries))
    mutation = merge_types("Mutation", (*mutations, *derived_mutations))
    subscription = merge_types(
        "Subscription", tuple(m.Subscription for m in modules if hasattr(m, "Subscription"))
    )
    extensions: list[type[SchemaExtension] | Any] = [
        # Parsing and validating a document costs more than running a small one: both
        # are done once per distinct document (bounded LRU caches, shared by requests).
        DocumentCache,
        *observers,
        ErrorPolicy,
        *document_limits(settings),
        cost_limit(settings.max_objects),
        WebSocketOperations,
    ]
    if not settings.is_development:
        # Clients get the schema from schema.graphql, not from a production server.
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    schema = Schema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        types=[found.graphql_type for found in entities()],
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=not settings.is_development,
            scalar_map={datetime: DateTime, JSON: JSONScalar},
        ),
    )
    describe_paging(schema._schema)
    schema.execution_context_class = lean_execution(schema)
    if not settings.is_development:
        schema.redaction = SchemaNames(schema._schema)
    return schema
