"""Before measuring: the endpoints must answer the same request with the same data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx
import orjson

from bench import documents
from bench.rounds import Round
from bench.servers import Endpoint


class MismatchError(Exception):
    """The endpoints disagree; measuring them side by side would compare different work."""


def _post(endpoint: Endpoint, body: bytes, authorization: str = "") -> bytes:
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    response = httpx.post(endpoint.url, content=body, headers=headers, timeout=30)
    if response.status_code != 200:
        raise MismatchError(
            f"{endpoint.name} answered {response.status_code}: {response.text[:500]}"
        )
    return response.content


def _difference(left: Any, right: Any, path: str = "$") -> str | None:
    """The first place where two JSON values differ, or None."""
    if isinstance(left, dict) and isinstance(right, dict):
        if list(left) != list(right):
            return f"{path}: keys {list(left)} != {list(right)}"
        for key in left:
            if (found := _difference(left[key], right[key], f"{path}.{key}")) is not None:
                return found
        return None
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return f"{path}: {len(left)} items != {len(right)}"
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            if (found := _difference(a, b, f"{path}[{index}]")) is not None:
                return found
        return None
    return None if left == right else f"{path}: {left!r} != {right!r}"


def _same(
    body: bytes, service: Endpoint, others: Sequence[Endpoint]
) -> tuple[Any, dict[str, bool]]:
    """The service's error-free answer to ``body``, parsed, once each of ``others``
    answers with equal JSON (else MismatchError); and, by name, whether each of them
    answered with the very same bytes."""
    ours = _post(service, body)
    data = orjson.loads(ours)
    if "errors" in data:
        raise MismatchError(f"service answered with errors: {data['errors']}")
    identical = {}
    for other in others:
        theirs = _post(other, body)
        if (found := _difference(data, orjson.loads(theirs))) is not None:
            raise MismatchError(f"service != {other.name} at {found}")
        identical[other.name] = ours == theirs
    return data, identical


def same_read(service: Endpoint, *others: Endpoint) -> dict[str, bool]:
    """Raise MismatchError unless all return equal, error-free JSON for the read query with
    a full page; by name, whether each other answered with the service's very bytes."""
    data, identical = _same(documents.read_body(), service, others)
    if len(data["data"]["posts"]["edges"]) != documents.PAGE_SIZE:
        raise MismatchError(f"the page does not have {documents.PAGE_SIZE} posts")
    return identical


def same_big_list(service: Endpoint, *others: Endpoint) -> int:
    """Raise MismatchError unless all return equal, error-free JSON for the big list, with
    a full page of users; the number of objects in it (users and their posts)."""
    data, _identical = _same(documents.big_list_body(), service, others)
    users = data["data"]["users"]["edges"]
    if len(users) != documents.BIG_LIST_USERS:
        raise MismatchError(f"the big list does not have {documents.BIG_LIST_USERS} users")
    return len(users) + sum(len(user["node"]["posts"]["edges"]) for user in users)


def same_create(service: Endpoint, reference: Endpoint, authorization: str) -> None:
    """Raise MismatchError unless both create a post and answer with the same fields."""
    answers = [
        orjson.loads(
            _post(endpoint, documents.create_post_body(f"Check {endpoint.name}"), authorization)
        )
        for endpoint in (service, reference)
    ]
    if "errors" in answers[0] or "post" not in answers[0]["data"]["createPost"]:
        raise MismatchError(f"service did not create a post: {answers[0]}")
    ours, theirs = (answer["data"]["createPost"]["post"] for answer in answers)
    if list(ours) != list(theirs) or ours["status"] != theirs["status"]:
        raise MismatchError(f"createPost answers differ: {ours} != {theirs}")


async def unwritten(connection: asyncpg.Connection, rounds: Sequence[Round]) -> int:
    """How many answered createPost requests of ``rounds`` left no post behind: an
    answer with an error in its data is still a 200 to wrk."""
    missing = 0
    for measured in rounds:
        pattern = documents.load_title(measured.label, "%")
        created = await connection.fetchval(
            "SELECT count(*) FROM posts WHERE title LIKE $1", pattern
        )
        missing += max(0, measured.load.requests - created)
    return missing
