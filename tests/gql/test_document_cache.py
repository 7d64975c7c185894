"""A document is validated once per schema and set of rules, and its errors stay."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import ValidationContext, ValidationRule
from strawberry.extensions import AddValidationRules

from gql.schema.build import build_schema
from gql.settings import Settings

INTROSPECTION = "{ __schema { queryType { name } } }"


class CountingRule(ValidationRule):
    """Counts validations: graphql-core makes each rule anew for every document."""

    runs = 0

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        CountingRule.runs += 1


def _schema(environment: str) -> Any:
    settings = Settings(database_url="postgresql+asyncpg://unused/unused", environment=environment)
    return build_schema(settings, observers=[lambda: AddValidationRules([CountingRule])])


@pytest.fixture(autouse=True)
def _count_from_zero() -> None:
    CountingRule.runs = 0


async def test_a_document_is_validated_once() -> None:
    schema = _schema("development")
    for _ in range(3):
        result = await schema.execute("query Once { __typename }")
        assert result.errors is None
        assert result.data == {"__typename": "Query"}
    assert CountingRule.runs == 1


async def test_an_invalid_document_keeps_its_errors() -> None:
    schema = _schema("development")
    first = await schema.execute("query Twice { nope }")
    second = await schema.execute("query Twice { nope }")
    assert first.errors is not None
    assert first.errors[0].message.startswith("Cannot query field 'nope' on type 'Query'.")
    assert second.errors is not None
    assert [e.message for e in second.errors] == [e.message for e in first.errors]
    assert CountingRule.runs == 1


async def test_each_schema_validates_with_its_own_rules() -> None:
    development, production = _schema("development"), _schema("production")
    allowed = await development.execute(INTROSPECTION)
    refused = await production.execute(INTROSPECTION)
    assert allowed.errors is None
    assert refused.errors is not None
    assert "introspection" in refused.errors[0].message.lower()
    assert CountingRule.runs == 2
