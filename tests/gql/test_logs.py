"""Structured logs: one line per GraphQL operation, the request id on every line, and no
secrets anywhere."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from gql.cli.logs import configure_logging
from gql.settings import LogFormat, Settings
from tests.gql.conftest import Person
from tests.support.graphql import GraphQLClient


@pytest.fixture
def log(settings: Settings) -> Iterator[io.StringIO]:
    """Production-style (JSON) logging into a buffer, for the length of a test."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    configure_logging(settings.model_copy(update={"log_format": LogFormat.JSON}), buffer)
    yield buffer
    root.handlers[:], root.level = saved


def lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


async def test_one_json_line_per_operation_with_name_outcome_duration_and_request_id(
    client: GraphQLClient, log: io.StringIO
) -> None:
    await client.http.post(
        "/graphql",
        json={"query": "query Tags { tags { totalCount } }"},
        headers={"X-Request-ID": "log-1"},
    )
    await client.http.post(
        "/graphql",
        json={"query": "query Bad { posts(first: -1) { totalCount } }"},
        headers={"X-Request-ID": "log-2"},
    )
    operations = [line for line in lines(log.getvalue())
                  if line["logger"] == "auditql.operations"]  # fmt: skip
    assert [(o["operation"], o["outcome"], o["request_id"]) for o in operations] == [
        ("Tags", "ok", "log-1"),
        ("Bad", "BAD_USER_INPUT", "log-2"),
    ]
    assert all(o["level"] == "INFO" and o["duration_ms"] >= 0 for o in operations)


async def test_tokens_and_passwords_never_reach_the_logs(
    client: GraphQLClient, alice: Person, log: io.StringIO
) -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    password = "correct horse battery staple"
    await client.execute(
        """mutation($input: UpdateUserInput!) { updateUser(input: $input) { __typename } }""",
        {"input": {"id": alice.id, "password": password}},
        token=alice.token,
    )
    login = await client.execute(
        """mutation($input: LoginInput!) { login(input: $input) {
             ... on TokenSuccess { token } } }""",
        {"input": {"email": "alice@example.com", "password": password}},
    )
    await client.post("{ viewer { id } }", token=login["login"]["token"])
    await client.post("{ viewer { id } }", token="aq_not-a-real-token")
    err = log.getvalue()
    assert len(lines(err)) >= 4, err
    for secret in (password, alice.token, login["login"]["token"], "aq_not-a-real-token"):
        assert secret not in err
