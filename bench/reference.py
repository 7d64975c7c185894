"""The reference endpoint: what the benchmark's requests cost without the framework.

Plain Starlette + asyncpg + orjson under the same uvicorn setup as the service
(uvloop, httptools, one process). ``POST /graphql`` answers the two documents of
``bench.documents`` by their ``operationName`` and nothing else:

- ``NewestPosts``: the same JSON as the service, from three statements (the page of
  posts, their users, their tags);
- ``CreatePost``: one INSERT of a draft post, without authentication or audit entry.

It deliberately imports nothing from ``gql`` or ``persistence``: its memory and CPU are
those of the plain stack. So it restates the two output formats the service defines —
global ids (``gql/schema/ids.py``) and the DateTime scalar (``gql/schema/scalars.py``) — and the
harness checks both endpoints answer with equal JSON before measuring, so a change on
either side shows up as a failed run, not as a wrong figure.

Configured by environment: ``BENCH_DSN`` (asyncpg), ``BENCH_POOL_SIZE``,
``BENCH_ACTOR_ID`` (the author of created posts).
"""

from __future__ import annotations

import base64
import os
import re
from collections import defaultdict
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


def _global_id(type_name: str, key: UUID | int) -> str:
    raw = f"{type_name}:{key.hex if isinstance(key, UUID) else key}"
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def _datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _newest_posts(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as connection:
        posts = await connection.fetch(_POSTS, _PAGE_SIZE)
        user_ids = {p["created_by_id"] for p in posts} | {p["updated_by_id"] for p in posts}
        users = {
            row["id"]: {"id": _global_id("User", row["id"]), "username": row["username"]}
            for row in await connection.fetch(_USERS, [u for u in user_ids if u is not None])
        }
        tags: dict[UUID, list[dict[str, str]]] = defaultdict(list)
        for row in await connection.fetch(_TAGS, [p["id"] for p in posts]):
            tags[row["post_id"]].append({"name": row["name"]})
    edges = [
        {
            "node": {
                "id": _global_id("Post", post["id"]),
                "title": post["title"],
                "status": post["status"].upper(),
                "createdAt": _datetime(post["created_at"]),
                "createdBy": users.get(post["created_by_id"]),
                "updatedBy": users.get(post["updated_by_id"]),
                "tags": tags.get(post["id"], []),
            }
        }
        for post in posts
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


def create_app() -> Starlette:
    pool_size = int(os.environ.get("BENCH_POOL_SIZE", "32"))
    actor_id = int(os.environ["BENCH_ACTOR_ID"])

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            os.environ["BENCH_DSN"], min_size=pool_size, max_size=pool_size, reset=_keep
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    async def graphql(request: Request) -> Response:
        payload = orjson.loads(await request.body())
        pool = request.app.state.pool
        if payload.get("operationName") == "CreatePost":
            data = await _create_post(pool, actor_id, payload)
        else:
            data = await _newest_posts(pool)
        return Response(orjson.dumps({"data": data}), media_type="application/json")

    async def health(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/health", health)],
        lifespan=lifespan,
    )
