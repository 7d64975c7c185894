"""The schema: every aggregate's resolvers module, merged, plus the policies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gql.engine.cost import cost_limit
from gql.engine.document_cache import DocumentCache
from gql.engine.document_limits import document_limits
from gql.engine.error_policy import ErrorPolicy
from gql.engine.execution import lean_execution
from gql.engine.redaction import SchemaNames
from gql.schema.resolvers import audit_log, auth, comment, feature_flag, post, tag, user
from gql.schema.resolvers.node import node_query
from gql.schema.scalars import DateTime
from gql.schema.types.audit_entry import AuditEntryType
from gql.schema.types.comment import CommentType
from gql.schema.types.feature_flag import FeatureFlagType, FlagOverrideType
from gql.schema.types.post import PostType
from gql.schema.types.tag import TagType
from gql.schema.types.user import UserType
from gql.settings import Settings

# One line per aggregate: its module's Query, Mutation and NODES join the schema.
MODULES = (user, auth, post, comment, tag, feature_flag, audit_log)

NODE_TYPES = (
    UserType, PostType, CommentType, TagType, FeatureFlagType, FlagOverrideType, AuditEntryType,
)  # fmt: skip


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
    lookups = {name: fn for m in MODULES for name, fn in getattr(m, "NODES", {}).items()}
    query = merge_types(
        "Query", (node_query(lookups), *(m.Query for m in MODULES if hasattr(m, "Query")))
    )
    mutation = merge_types("Mutation", tuple(m.Mutation for m in MODULES if hasattr(m, "Mutation")))
    extensions: list[type[SchemaExtension] | Any] = [
        # Parsing and validating a document costs more than running a small one: both
        # are done once per distinct document (bounded LRU caches, shared by requests).
        DocumentCache,
        *observers,
        ErrorPolicy,
        *document_limits(settings),
        cost_limit(settings.max_objects),
    ]
    if not settings.is_development:
        # Clients get the schema from schema.graphql, not from a production server.
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    schema = Schema(
        query=query,
        mutation=mutation,
        types=NODE_TYPES,
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=not settings.is_development,
            scalar_map={datetime: DateTime},
        ),
    )
    schema.execution_context_class = lean_execution(schema)
    if not settings.is_development:
        schema.redaction = SchemaNames(schema._schema)
    return schema
