"""A graphql-transport-ws client over a real WebSocket, for tests of subscriptions."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

PROTOCOL = "graphql-transport-ws"


class Subscriber:
    """One connection: ``subscribe`` operations by id, then ``next`` each one's payloads;
    messages are sorted by operation as they arrive."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._messages: dict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.connection:
                assert isinstance(raw, str), "graphql-ws clients read text frames only"
                message = json.loads(raw)
                await self._messages[message.get("id", "")].put(message)

    async def subscribe(self, operation: str, query: str, /, **variables: Any) -> None:
        payload = {"query": query, "variables": variables}
        message = {"id": operation, "type": "subscribe", "payload": payload}
        await self.connection.send(json.dumps(message))

    async def message(self, id: str, within: float = 10) -> dict[str, Any]:
        """The operation's next message (``next``, ``error`` or ``complete``)."""
        return await asyncio.wait_for(self._messages[id].get(), within)

    async def next(self, id: str, within: float = 10) -> dict[str, Any]:
        """The data of the operation's next ``next`` message."""
        message = await self.message(id, within)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def nothing_more(self, id: str, seconds: float = 1.0) -> None:
        """Wait ``seconds``: the operation gets no message meanwhile."""
        await asyncio.sleep(seconds)
        assert self._messages[id].empty(), self._messages[id].get_nowait()

    async def closed(self, within: float = 10) -> int | None:
        """The close code the server sent, once it closed the connection."""
        await asyncio.wait_for(self._reader, within)
        await self.connection.wait_closed()
        return self.connection.close_code


@contextlib.asynccontextmanager
async def subscriber(
    base: str, token: str | None = None, *, init: bool = True
) -> AsyncIterator[Subscriber]:
    """A connection to ``base``'s GraphQL path, signed in with ``token`` (anonymous
    without); ``init=False`` leaves ``connection_init`` to the test."""
    url = base.replace("http://", "ws://", 1) + "/graphql"
    async with websockets.connect(url, subprotocols=[PROTOCOL]) as connection:  # type: ignore[list-item]
        if init:
            payload = {} if token is None else {"Authorization": f"Bearer {token}"}
            await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
            ack = json.loads(await asyncio.wait_for(connection.recv(), 10))
            assert ack["type"] == "connection_ack", ack
        client = Subscriber(connection)
        try:
            yield client
        finally:
            client._reader.cancel()


async def running(base: str, subscriptions: int, within: float = 10) -> None:
    """Wait until the server at ``base`` runs exactly ``subscriptions`` subscriptions
    (its ``auditql_live_subscriptions`` gauge): each has then taken its starting
    point, and any change committed afterwards is one of its events."""
    expected = f"auditql_live_subscriptions {float(subscriptions)}"
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient(base_url=base, timeout=within) as client:
        while expected not in (lines := (await client.get("/metrics")).text.splitlines()):
            if asyncio.get_running_loop().time() > deadline:
                seen = [line for line in lines if line.startswith("auditql_live_subscriptions")]
                raise AssertionError(f"not within {within:g} s: {expected} (seen: {seen})")
            await asyncio.sleep(0.02)
