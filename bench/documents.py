"""The GraphQL requests both endpoints answer, as the JSON bodies wrk sends."""

from __future__ import annotations

import orjson

PAGE_SIZE = 50

NEWEST_POSTS = (
    f"query NewestPosts {{ posts(first: {PAGE_SIZE}) {{ edges {{ node {{ id title status "
    "createdAt createdBy { id username } updatedBy { id username } tags { name } } } } }"
)
"""The read of issue 6: the 50 newest posts (the list's default order is newest first)."""

BIG_LIST_USERS, BIG_LIST_POSTS = 100, 99
BIG_LIST = (
    f"query BigList {{ users(first: {BIG_LIST_USERS}) {{ edges {{ node {{ id username "
    f"posts(first: {BIG_LIST_POSTS}) {{ edges {{ node {{ id title status createdAt }} }} }} "
    "} } } }"
)
"""The big read of issue 17: the first 100 users (by username) with their 99 newest posts
each, 100 + 100 x 99 = 10,000 objects, the most the service's default cost limit
(``AUDITQL_MAX_OBJECTS``, 10,000) lets one request ask for (the seeded data set gives
these users enough posts to fill it: ``bench/seed.py``)."""

CREATE_POST = (
    "mutation CreatePost($input: CreatePostInput!) { createPost(input: $input) { "
    "... on PostSuccess { post { id title slug status createdAt version } } "
    "... on Error { code message } } }"
)

COUNTER = "{n}"
"""Replaced by wrk (bench/wrk.lua) with a per-request counter: titles, and so the
slugs made from them, must be unique among live posts."""


def load_title(label: str, number: str = COUNTER) -> str:
    """The title of the ``number``-th post that the wrk run ``label`` creates."""
    return f"Bench {label} {number}"


def read_body() -> bytes:
    return orjson.dumps({"query": NEWEST_POSTS, "operationName": "NewestPosts"})


def big_list_body() -> bytes:
    return orjson.dumps({"query": BIG_LIST, "operationName": "BigList"})


def create_post_body(title: str) -> bytes:
    """A createPost request; ``title`` may contain :data:`COUNTER`."""
    return orjson.dumps(
        {
            "query": CREATE_POST,
            "operationName": "CreatePost",
            "variables": {"input": {"title": title}},
        }
    )
