"""Limits on the shape of a GraphQL document, enforced while it is parsed or validated:
before any resolver runs or any SQL is sent. A refused document gets a readable
message with code GRAPHQL_VALIDATION_FAILED (GRAPHQL_PARSE_FAILED for too many tokens)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.extensions import max_aliases as aliases
from strawberry.extensions import query_depth_limiter as depth

from gql.settings import Settings


def max_root_fields(limit: int) -> type[ASTValidationRule]:
    """A rule refusing operations that select more than ``limit`` top-level fields
    (through fragments too): each root field is its own batch of queries."""

    class MaxRootFields(ASTValidationRule):
        context: ValidationContext

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            count = self._count(node.selection_set, set())
            if count > limit:
                name = node.name.value if node.name else "the operation"
                self.report_error(
                    GraphQLError(
                        f"{name} selects {count} top-level fields; at most {limit} are "
                        "allowed. Split it into several operations.",
                        node,
                    )
                )

        def _count(self, selections: SelectionSetNode, seen: set[str]) -> int:
            count = 0
            for selection in selections.selections:
                if isinstance(selection, FieldNode):
                    count += 1
                elif isinstance(selection, InlineFragmentNode):
                    count += self._count(selection.selection_set, seen)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.context.get_fragment(name)
                    if fragment is not None and name not in seen:
                        count += self._count(fragment.selection_set, seen | {name})
            return count

    return MaxRootFields


def document_limits(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """The limiters as extension factories (never shared instances). The validation
    rules are built once, so a document validated before is found in the validation
    cache (its key holds the rule classes)."""
    rules = [
        depth.create_validator(settings.max_query_depth, should_ignore=None, callback=None),
        aliases.create_validator(settings.max_aliases),
        max_root_fields(settings.max_root_fields),
    ]
    return [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: AddValidationRules(rules),
    ]
