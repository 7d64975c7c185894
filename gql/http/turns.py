"""Turns to be served, shared fairly between clients.

A process serves at most ``capacity`` GraphQL requests at once: serving more only
interleaves their work, so each takes as long as all of them, with all their rows in
memory at the same time. The others wait for a turn, and turns are handed out in
rounds, one round per pass of the event loop:

- in a round, each waiting client gets at most one turn, clients in rotation, so a
  client that sends fifty requests at once waits behind its own fifty, not in front of
  everyone else. A request that runs to completion without waiting (a refusal) would
  otherwise take a whole pass of the loop with its fifty siblings, while another
  client's request, which needs a pass for each of its database round trips, waits
  through every one of them;
- a client with a backlog, served in the last round, sits the next one out while
  another client's request is in progress: bursts yield to steady clients;
- while others are served or wait, no client holds more than its share of the turns
  (``capacity`` divided by the clients), and a client alone may hold three quarters
  of them: the last quarter is kept for newcomers, so that a client whose requests all
  wait on something slow (a locked row) cannot leave another waiting behind them.

A client is its bearer token (by hash) or, without one, its address. The wait is the
first thing a GraphQL request does (:class:`FairTurnsMiddleware` is the outermost
middleware): a client's waiting requests cost nothing until their turn, and everything
done for a request, refusals included, is done in its client's turns.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from persistence.security import hash_token


class FairTurns:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._most_for_one = capacity - capacity // 4
        self._in_use = 0
        self._serving: Counter[str] = Counter()
        # Clients with requests waiting, in the order their next turn comes.
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._dispatching = False
        self._last_round: set[str] = set()

    @asynccontextmanager
    async def turn(self, client: str) -> AsyncIterator[None]:
        """Wait for a turn for ``client``, and hold it for the block."""
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(client, deque()).append(granted)
        self._dispatch_soon()
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():  # granted, then cancelled
                self._release(client)
            else:
                self._forget(client, granted)
            raise
        try:
            yield
        finally:
            self._release(client)

    def _dispatch_soon(self) -> None:
        if self._waiting and not self._dispatching and self._in_use < self._capacity:
            self._dispatching = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        """One round: each waiting client, in rotation, gets at most one turn, within its
        share. A round per pass of the event loop: a client's requests that would each
        run to completion at once (a refusal does) take one pass each, interleaved with
        everyone else's work, instead of the whole pass."""
        self._dispatching = False
        granted_now: set[str] = set()
        yielded = False
        for client in list(self._waiting):
            if self._in_use >= self._capacity:
                break
            if not self._may_serve(client):
                continue
            if self._yields(client):
                yielded = True
                continue
            waiters = self._waiting[client]
            granted = waiters.popleft()
            if waiters:
                self._waiting.move_to_end(client)  # its next request waits for the others
            else:
                del self._waiting[client]
            self._serving[client] += 1
            self._in_use += 1
            granted.set_result(None)
            granted_now.add(client)
        self._last_round = granted_now
        if granted_now or yielded:  # else only a release can make progress
            self._dispatch_soon()

    def _yields(self, client: str) -> bool:
        """A client with a backlog, started last round, sits this one out while another
        client's request is in progress: bursts yield to steady clients."""
        others = len(self._serving) - (client in self._serving)
        return others > 0 and client in self._last_round and len(self._waiting[client]) > 1

    def _may_serve(self, client: str) -> bool:
        clients = len(self._serving.keys() | self._waiting.keys())
        share = min(self._most_for_one, self._capacity // clients)
        return self._serving[client] < max(1, share)

    def _release(self, client: str) -> None:
        self._in_use -= 1
        self._serving[client] -= 1
        if not self._serving[client]:
            del self._serving[client]
        self._dispatch_soon()

    def _forget(self, client: str, granted: asyncio.Future[None]) -> None:
        waiters = self._waiting.get(client)
        if waiters is not None and granted in waiters:
            waiters.remove(granted)
            if not waiters:
                del self._waiting[client]


class FairTurnsMiddleware:
    """Every GraphQL request (``/graphql``, the playground's assets aside) takes a turn."""

    def __init__(self, app: ASGIApp, turns: FairTurns) -> None:
        self.app = app
        self.turns = turns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/graphql":
            await self.app(scope, receive, send)
            return
        async with self.turns.turn(client_of(scope)):
            await self.app(scope, receive, send)


def client_of(scope: Scope) -> str:
    """Who is asking: the bearer token (its hash), else the address (the proxy's client
    when proxy headers are trusted)."""
    authorization = Headers(scope=scope).get("authorization")
    if authorization is not None:
        return "token:" + hash_token(authorization.strip().partition(" ")[2].strip())
    client = scope.get("client")
    return "address:" + (client[0] if client else "unknown")
