"""The reference endpoint (the limit): what the benchmark's requests cost without a framework.

Plain Starlette + asyncpg + orjson under the same uvicorn setup as the service
(uvloop, httptools, one process). ``POST /graphql`` answers the two documents of
``bench.documents`` by their ``operationName`` and nothing else:

- ``NewestPosts``: the same JSON as the service, from three statements (the page of
  posts, their users, their tags);
- ``CreatePost``: one INSERT of a draft post, without authentication or audit entry.

It is as fast as that stack can honestly be, so that the ratios measure the service's
overhead and nothing of the reference's own: the GraphQL route is a bare ASGI endpoint
(Starlette routes to it, without building a Request and a Response for it); a pooled
connection goes back to the pool without asyncpg's reset query or idle timer; each
statement is prepared once per connection (asyncpg's statement cache); orjson writes the
timestamps itself; and the garbage collector is tuned as the service's is. What it still
does per request is what any server must: read and parse the body, run the statements
(the same rows as the service reads), build and encode the answer.

It deliberately imports nothing from ``gql`` or ``persistence``: its memory and CPU are
those of the plain stack. So it restates the two output formats the service defines —
global ids (``gql/schema/ids.py``) and the DateTime scalar (``gql/schema/scalars.py``) — and the
harness checks both endpoints answer with equal JSON before measuring, so a change on
either side shows up as a failed run, not as a wrong figure.

Configured by environment: ``BENCH_DSN`` (asyncpg), ``BENCH_POOL_SIZE``,
``BENCH_ACTOR_ID`` (the author of created posts).
"""

from __future__ import annotations

import binascii
import gc
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from uuid6 import uuid7

_POSTS = """
SELECT id, title, status, created_at, created_by_id, updated_by_id FROM posts
WHERE deleted_at IS NULL AND status = 'published'
ORDER BY created_at DESC, id DESC LIMIT $1
"""
_USERS = "SELECT id, username FROM users WHERE id = ANY($1::int[])"
_TAGS = """
SELECT post_tags.post_id, tags.name FROM post_tags JOIN tags ON tags.id = post_tags.tag_id
WHERE post_tags.post_id = ANY($1::uuid[]) ORDER BY tags.name, tags.id
"""
_INSERT = """
INSERT INTO posts (id, title, slug, body, status, created_at, updated_at, created_by_id,
                   updated_by_id, version)
VALUES ($1, $2, $3, '', 'draft', $4, $4, $5, $5, 1)
"""
_PAGE_SIZE = 50
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _global_id(type_name: str, key: UUID | int) -> str:
    """``base64url("Post:<key>")`` unpadded, as the service makes them."""
    raw = f"{type_name}:{key.hex if isinstance(key, UUID) else key}".encode()
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _datetime(value: datetime) -> datetime | str:
    """The service's DateTime (RFC 3339 in UTC, always with microseconds) as orjson
    writes it with ``OPT_UTC_Z``, in C: asyncpg returns ``timestamptz`` values in UTC,
    and orjson leaves out a fraction of zero, so those few are formatted here."""
    if value.microsecond:
        return value
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


async def _newest_posts(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as connection:
        posts = await connection.fetch(_POSTS, _PAGE_SIZE)
        user_ids = {p["created_by_id"] for p in posts} | {p["updated_by_id"] for p in posts}
        user_ids.discard(None)
        users = {
            key: {"id": _global_id("User", key), "username": username}
            for key, username in await connection.fetch(_USERS, list(user_ids))
        }
        tags: dict[UUID, list[dict[str, str]]] = {p["id"]: [] for p in posts}
        for post_id, name in await connection.fetch(_TAGS, list(tags)):
            tags[post_id].append({"name": name})
    edges = [
        {
            "node": {
                "id": _global_id("Post", post_id),
                "title": title,
                "status": status.upper(),
                "createdAt": _datetime(created_at),
                "createdBy": users.get(created_by_id),
                "updatedBy": users.get(updated_by_id),
                "tags": tags[post_id],
            }
        }
        for post_id, title, status, created_at, created_by_id, updated_by_id in posts
    ]
    return {"posts": {"edges": edges}}


async def _create_post(pool: asyncpg.Pool, actor_id: int, payload: Any) -> dict[str, Any]:
    title = payload["variables"]["input"]["title"]
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    post_id, now = uuid7(), datetime.now(UTC)
    await pool.execute(_INSERT, post_id, title, slug, now, actor_id)
    post = {
        "id": _global_id("Post", post_id),
        "title": title,
        "slug": slug,
        "status": "DRAFT",
        "createdAt": _datetime(now),
        "version": 1,
    }
    return {"createPost": {"post": post}}


async def _keep(_connection: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is: these handlers change no session state,
    and asyncpg's default reset would add a round trip of four statements per request."""


def _tune_gc() -> None:
    """The service's garbage-collector settings (``gql/cli/server.py``): the objects of
    start-up frozen out of every collection, and the young generation collected every
    10,000 allocations instead of 700. A page answer allocates about 1,000 objects, so
    with Python's defaults every request paid for a collection or two, and now and then
    for a full one over every module's objects: 0.11-0.15 ms of the 0.6-0.7 ms of CPU a
    read costs the handler, 32 at a time (0.01 ms tuned)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def _body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    while message.get("more_body"):
        message = await receive()
        body += message.get("body", b"")
    return body


class _GraphQL:
    """``POST /graphql`` as a bare ASGI endpoint; its pool is opened by the lifespan."""

    def __init__(self, actor_id: int) -> None:
        self.actor_id = actor_id
        self.pool: asyncpg.Pool | None = None

    async def __call__(self, _scope: Scope, receive: Receive, send: Send) -> None:
        assert self.pool is not None, "the lifespan opens the pool before any request"
        payload = orjson.loads(await _body(receive))
        if payload.get("operationName") == "CreatePost":
            data = await _create_post(self.pool, self.actor_id, payload)
        else:
            data = await _newest_posts(self.pool)
        body = orjson.dumps({"data": data}, option=orjson.OPT_UTC_Z)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def create_app() -> Starlette:
    pool_size = int(os.environ.get("BENCH_POOL_SIZE", "32"))
    graphql = _GraphQL(int(os.environ["BENCH_ACTOR_ID"]))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # No idle-lifetime timer either: asyncpg would rearm it on every release.
        graphql.pool = await asyncpg.create_pool(
            os.environ["BENCH_DSN"], min_size=pool_size, max_size=pool_size, reset=_keep,
            max_inactive_connection_lifetime=0,
        )  # fmt: skip
        _tune_gc()
        try:
            yield
        finally:
            await graphql.pool.close()

    async def health(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/health", health)],
        lifespan=lifespan,
    )
