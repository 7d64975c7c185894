"""Top-level errors: unexpected ones are masked and logged in full; the client's own
mistakes come back as they are, with a stable code."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from persistence.engine import Database
from persistence.repositories.feature_flag import FeatureFlagRepository
from persistence.repositories.tag import TagRepository
from tests.gql.conftest import Person
from tests.support.graphql import GraphQLClient, codes

FLAG = '{ featureFlag(key: "x") { key } }'
CREATE_TAG = 'mutation { createTag(input: {name: "boom"}) { __typename } }'
# What must never reach a client: the exception's text, SQL, constraint names, stacks.
SECRETS = ("secret internals", "secret_table", "SELECT", "INSERT", "uq_tags_name_lower",
           "Traceback", "RuntimeError", "IntegrityError", "File \"", ".py")  # fmt: skip


async def fail_with_text(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("secret internals")


async def fail_in_sql(self: FeatureFlagRepository, *args: Any, **kwargs: Any) -> Any:
    """A real error from the database, whose message quotes the SQL."""
    await self.session.execute(text("SELECT secret_column FROM secret_table"))


async def fail_on_a_constraint(self: Any, *args: Any, **kwargs: Any) -> Any:
    """A constraint violation the translation layer does not recognise."""
    raise sa_exc.IntegrityError(
        "INSERT INTO tags (name) VALUES ($1)", ("boom",),
        Exception('duplicate key value violates unique constraint "uq_tags_name_lower"'),
    )  # fmt: skip


# case -> (what to break, how, the document that reaches it, its field, what the log shows)
CASES = {
    "query-exception": (FeatureFlagRepository, "find_by_key", fail_with_text, FLAG,
                        "featureFlag", "secret internals"),
    "query-sql-error": (FeatureFlagRepository, "find_by_key", fail_in_sql, FLAG,
                        "featureFlag", "secret_table"),
    "mutation-exception": (TagRepository, "add", fail_with_text, CREATE_TAG,
                           "createTag", "secret internals"),
    "mutation-constraint": (TagRepository, "add", fail_on_a_constraint, CREATE_TAG,
                            "createTag", "uq_tags_name_lower"),
}  # fmt: skip


@pytest.mark.parametrize("request_id", ["err-42", None])
@pytest.mark.parametrize("case", sorted(CASES))
async def test_unexpected_errors_are_masked_and_logged_in_full(
    client: GraphQLClient, app_database: Database, admin: Person,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    case: str, request_id: str | None,
) -> None:  # fmt: skip
    repository, method, failure, document, field, cause = CASES[case]
    monkeypatch.setattr(repository, method, failure)
    caplog.set_level(logging.ERROR, logger="auditql.errors")
    headers = {"Authorization": f"Bearer {admin.token}"}
    if request_id is not None:
        headers["X-Request-ID"] = request_id

    response = await client.http.post("/graphql", json={"query": document}, headers=headers)

    assert response.status_code == 200
    body = response.json()
    [error] = body["errors"]
    shown = request_id or response.headers["x-request-id"]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": shown}
    assert error["path"] == [field]
    assert set(error) == {"message", "locations", "path", "extensions"}
    for secret in SECRETS:
        assert secret not in response.text

    [record] = [r for r in caplog.records if r.name == "auditql.errors"]
    assert record.levelno == logging.ERROR
    assert getattr(record, "request_id", None) == shown
    assert shown in record.getMessage()
    logged = caplog.text
    assert "Traceback" in logged
    assert failure.__name__ in logged  # the frame that raised
    assert cause in logged


async def test_a_masked_mutation_writes_nothing(
    client: GraphQLClient, app_database: Database, admin: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = TagRepository.add

    async def add_then_fail(self: TagRepository, *args: Any, **kwargs: Any) -> Any:
        await original(self, *args, **kwargs)  # the row is flushed, then something breaks
        raise RuntimeError("secret internals")

    monkeypatch.setattr(TagRepository, "add", add_then_fail)
    assert codes(await client.errors(CREATE_TAG, token=admin.token)) == ["INTERNAL_SERVER_ERROR"]
    async with app_database.reader() as session:
        assert await TagRepository(session).get_one_by(name="boom") is None


async def test_other_fields_still_resolve_next_to_a_masked_error(
    client: GraphQLClient, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FeatureFlagRepository, "find_by_key", fail_with_text)
    body = (await client.post('{ viewer { username } featureFlag(key: "x") { key } }',
                              token=alice.token)).json()  # fmt: skip
    assert body["data"] == {"viewer": {"username": "alice"}, "featureFlag": None}
    assert codes(body["errors"]) == ["INTERNAL_SERVER_ERROR"]


@pytest.mark.parametrize(
    ("document", "code", "message"),
    [
        ("{ viewer { id }", "GRAPHQL_PARSE_FAILED", "Syntax Error"),
        ("query { ...", "GRAPHQL_PARSE_FAILED", "Syntax Error"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'nope' on type 'Query'"),
        ("{ viewer { password } }", "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'password'"),
        ("{ featureFlag(key: 1) { key } }", "GRAPHQL_VALIDATION_FAILED", "String cannot represent"),
        ("{ featureFlag { key } }", "GRAPHQL_VALIDATION_FAILED", "featureFlag(key:)"),
        ('{ node(id: "x") }', "GRAPHQL_VALIDATION_FAILED", "must have a selection"),
    ],
)
async def test_document_errors_are_shown_as_they_are(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture, document: str, code: str, message: str
) -> None:
    caplog.set_level(logging.ERROR, logger="auditql.errors")
    response = await client.http.post(
        "/graphql", json={"query": document}, headers={"X-Request-ID": "doc-1"}
    )
    errors = response.json()["errors"]
    assert codes(errors) == [code] * len(errors)
    assert message in errors[0]["message"]
    assert errors[0]["extensions"]["requestId"] == "doc-1"
    assert not [r for r in caplog.records if r.name == "auditql.errors"]  # not a server error


async def test_a_bad_variable_is_a_bad_user_input(client: GraphQLClient) -> None:
    document = "query($key: String!) { featureFlag(key: $key) { key } }"
    errors = await client.errors(document, {"key": None})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert "$key" in errors[0]["message"]
