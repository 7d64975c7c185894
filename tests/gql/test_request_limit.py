"""AUDITQL_MAX_CONCURRENT_REQUESTS: requests over the limit wait their turn, and none is
refused for it. A real ``auditql serve``; an update held up by a row lock is the request
that takes its time."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.gql.conftest import LiveServer, Scene
from tests.gql.test_database_faults import NO_LIMITS, POSTS, VIEWER, assert_ok, blocked_update, send

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.mark.parametrize(("limit", "read_waits"), [(1, True), (2, False)])
async def test_a_request_over_the_limit_waits_for_a_turn(
    live_server: LiveServer, scene: Scene, other_client: AsyncConnection, limit: int,
    read_waits: bool,
) -> None:  # fmt: skip
    env = {**NO_LIMITS, "AUDITQL_MAX_CONCURRENT_REQUESTS": str(limit),
           "AUDITQL_DB_LOCK_TIMEOUT_MS": "20000"}  # fmt: skip
    with live_server(**env) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            assert_ok((await send(http, VIEWER, headers=scene.bearer))[0])
            async with blocked_update(http, scene, other_client, "Waited") as update:
                read = asyncio.create_task(send(http, POSTS))
                # With a free turn the read needs a few milliseconds; give it a second.
                await asyncio.wait([read], timeout=1)
                read_answered_during_the_lock = read.done()
            updated, _ = await update
            answered, _ = await read

    assert read_answered_during_the_lock is not read_waits
    assert assert_ok(updated)["data"]["updatePost"]["post"] == {"title": "Waited", "version": 2}
    assert assert_ok(answered)["data"]["posts"]["edges"] == []  # the post is a draft
