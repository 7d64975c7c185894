"""The clients of ``python -m bench --live``: subscribers over WebSocket
(graphql-transport-ws, as ``gql/live/transport.py`` serves it), the writer over HTTP,
and what ``/metrics`` says. Each is this process's, on the load core.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")
COMMENT_ADDED = "subscription($p: ID!) { commentAdded(postId: $p) { cursor comment { id } } }"
NODE_CHANGED = "subscription($p: ID!) { nodeChanged(id: $p) { cursor action } }"
CREATE_COMMENT = (
    "mutation CreateComment($input: CreateCommentInput!) { createComment(input: $input) { "
    "__typename ... on CommentSuccess { comment { id } } ... on Error { code message } } }"
)
CONNECTING = 50
"""Idle subscribers connecting at once."""
_ARRIVAL_SECONDS = 10.0
"""How long after its write an event may take before the run fails."""


class LiveError(Exception):
    """A subscription misbehaved: an event missing, twice, or unasked for; an error."""


@dataclass(frozen=True)
class Write:
    comment_id: str
    sent: float
    answered: float
    """Wall-clock seconds (``time.time()``), as the arrivals and commit timestamps."""


@dataclass(frozen=True)
class Arrival:
    at: float
    position: int


class Watcher:
    """The measuring subscriber: each event's arrival, by comment id."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.arrivals: dict[str, list[Arrival]] = defaultdict(list)
        self.other: list[str] = []
        self._arrived = asyncio.Event()

    async def run(self) -> None:
        """Until the connection closes (the server closing it is kept as a message)."""
        with contextlib.suppress(ConnectionClosed):
            async for message in self.connection:
                at = time.time()
                data = orjson.loads(message)
                event = ((data.get("payload") or {}).get("data") or {}).get("commentAdded")
                if data.get("type") != "next" or event is None:
                    self.other.append(str(message)[:300])
                    continue
                self.arrivals[event["comment"]["id"]].append(Arrival(at, int(event["cursor"])))
                self._arrived.set()
        self.other.append(f"closed: {self.connection.close_code} {self.connection.close_reason}")

    async def until(self, comment_ids: Sequence[str]) -> None:
        """Return once each of them arrived; LiveError if one did not in time."""
        try:
            async with asyncio.timeout(_ARRIVAL_SECONDS):
                while any(c not in self.arrivals for c in comment_ids):
                    if self.other:
                        raise LiveError(f"the watcher received: {self.other}")
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            missing = sum(c not in self.arrivals for c in comment_ids)
            raise LiveError(
                f"{missing} of {len(comment_ids)} events had not arrived "
                f"{_ARRIVAL_SECONDS:g} s after the last write"
            ) from None


async def signed_in(url: str, token: str) -> ClientConnection:
    connection = await connect(url, subprotocols=[PROTOCOL], open_timeout=30)
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    await connection.send(orjson.dumps(init).decode())
    ack = orjson.loads(await asyncio.wait_for(connection.recv(), 30))
    if ack.get("type") != "connection_ack":
        raise LiveError(f"connection_init was answered with {ack}")
    return connection


async def subscribe(connection: ClientConnection, document: str, post_id: str) -> None:
    message = {"id": "1", "type": "subscribe",
               "payload": {"query": document, "variables": {"p": post_id}}}  # fmt: skip
    await connection.send(orjson.dumps(message).decode())


class Idle:
    """Subscribers that must receive nothing: anything they do receive is kept."""

    def __init__(self) -> None:
        self.connections: list[ClientConnection] = []
        self.received: list[str] = []
        self._readers: list[asyncio.Task[None]] = []
        self._closing = False

    async def open(self, url: str, secrets: Sequence[str], post_ids: Sequence[str]) -> None:
        gate = asyncio.Semaphore(CONNECTING)

        async def one(n: int) -> None:
            async with gate:
                connection = await signed_in(url, secrets[n])
                self.connections.append(connection)
                await subscribe(connection, (COMMENT_ADDED, NODE_CHANGED)[n % 2], post_ids[n])
                self._readers.append(asyncio.create_task(self._read(connection)))

        await asyncio.gather(*(one(n) for n in range(len(secrets))))

    async def _read(self, connection: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in connection:
                self.received.append(str(message)[:300])
        if not self._closing:
            self.received.append(f"closed by the server: {connection.close_code}")

    async def close(self) -> None:
        self._closing = True
        await asyncio.gather(*(c.close() for c in self.connections))
        await asyncio.gather(*self._readers)
        self.connections.clear()


async def scrape(http: httpx.AsyncClient, base: str) -> dict[str, float]:
    """The samples of ``/metrics`` by name and labels, ``name{le=0.1}`` for instance."""
    response = await http.get(f"{base}/metrics")
    response.raise_for_status()
    return {
        sample.name + "".join(f"{{{k}={v}}}" for k, v in sample.labels.items()): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def until_subscribed(http: httpx.AsyncClient, base: str, expected: int) -> None:
    """Wait until the server runs ``expected`` subscriptions: each one registered, so
    that no event after it can miss it."""
    deadline = time.monotonic() + 60
    while (running := (await scrape(http, base)).get("auditql_live_subscriptions")) != expected:
        if time.monotonic() > deadline:
            raise LiveError(f"the server runs {running} subscriptions, not {expected}")
        await asyncio.sleep(0.05)


async def write_comments(
    http: httpx.AsyncClient, url: str, post_id: str, count: int, rate: float, label: str
) -> list[Write]:
    """``count`` comments, one every ``1 / rate`` s (later if a request takes longer)."""
    writes, start = [], time.monotonic()
    for n in range(count):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        comment = {"postId": post_id, "body": f"Bench {label} {n}"}
        body = {"query": CREATE_COMMENT, "variables": {"input": comment}}
        sent = time.time()
        response = await http.post(url, json=body)
        answered = time.time()
        found = (response.json().get("data") or {}).get("createComment") or {}
        if found.get("__typename") != "CommentSuccess":
            raise LiveError(f"createComment answered {response.status_code}: {response.text}")
        writes.append(Write(found["comment"]["id"], sent, answered))
    return writes
