"""One client's WebSocket, in graphql-transport-ws: strawberry's handler with our rules.

- ``connection_init`` signs in with ``{"Authorization": "Bearer <token>"}`` (or
  ``authorization``), the same tokens as HTTP: an invalid, expired or revoked token, or
  a deactivated user, is refused alike (4403 Forbidden, :data:`~gql.live.hub.REFUSED_REASON`);
  no token means anonymous, as over HTTP. A database that cannot answer closes with
  1013 (Try Again Later). Within ``ws_init_timeout_seconds`` or 4408.
- Only subscriptions run over a WebSocket (:class:`WebSocketOperations`); queries and
  mutations go over HTTP, where their limits and consistency tokens are.
- Each ``subscribe`` spends one request of the caller's rate limit, is held to the
  document size limit, and resolves persisted documents as HTTP does; the document
  limits and the cost limit apply as to any operation. Past the subscriptions allowed
  per connection or per token, it gets an ``error`` message (code ``LIMIT_EXCEEDED``).
- A connection running no subscription that says nothing for ``ws_idle_timeout_seconds``
  is closed (1000); messages over ``ws_max_message_bytes`` are refused by the server
  (1009).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any, Protocol, cast

from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)
from strawberry.types.graphql import OperationType

from gql.errors import BadRequestError, ClientError, RateLimitedError
from gql.http.authentication import InvalidTokenError, authenticate_token
from gql.http.persisted import PersistedDocuments
from gql.http.request_id import current_request_id
from gql.live.hub import FORBIDDEN_CLOSE, REFUSED_REASON, Channel, Live
from gql.schema.context import Context
from gql.schema.loaders import Loaders


class DocumentsView(Protocol):
    """What of the GraphQL view a subscribe message goes through, as an HTTP request
    does (:class:`gql.http.app.GraphQLApp`)."""

    documents: PersistedDocuments

    def check_size(self, query: str | None) -> None: ...


UNAVAILABLE_CLOSE = 1013
IDLE_CLOSE = 1000


class LimitExceededError(ClientError):
    code = "LIMIT_EXCEEDED"


class UnavailableError(Exception):
    """The database could not say whether the token is good."""

    def __init__(self, refusal: ClientError) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class WebSocketOperations(SchemaExtension):
    """Over a WebSocket, only subscriptions run (HTTP refuses them:
    :meth:`gql.http.app.GraphQLApp.parse_http_body`)."""

    def on_execute(self) -> Any:
        execution = self.execution_context
        if getattr(execution.context, "channel", None) is not None and (
            execution.operation_type is not OperationType.SUBSCRIPTION
        ):
            raise BadRequestError(
                "Over WebSocket only subscriptions run; send queries and mutations over HTTP."
            )
        yield


class TextFrames(ASGIWebSocketAdapter):
    """Messages as text frames, which graphql-ws clients require (``encode_json`` gives
    orjson's bytes, which strawberry would send as binary frames). Mirrors strawberry's
    ``send_json`` (pinned: gql/engine/compat.py)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        encoded = self.view.encode_json(message)
        try:
            await self.ws.send_text(encoded.decode() if isinstance(encoded, bytes) else encoded)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class LiveConnection(BaseGraphQLTransportWSHandler[Context, None]):
    """See the module."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._last_heard = time.monotonic()
        self._idle: asyncio.Task[None] | None = None

    @property
    def _app(self) -> DocumentsView:
        return cast(DocumentsView, self.view)

    @property
    def _live(self) -> Live:
        live = self.context.live
        assert live is not None, "subscriptions are served only with live updates on"
        return live

    def on_request_accepted(self) -> None:
        super().on_request_accepted()
        self._live.connections += 1
        self._idle = asyncio.create_task(self._close_when_idle())

    async def shutdown(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle
        await super().shutdown()
        self._live.connections -= 1
        if self.context.channel is not None:
            self._live.leave(self.context.channel)

    async def handle_message(self, message: Message) -> None:
        self._last_heard = time.monotonic()
        await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload") or {}
        if not (self.connection_init_received or self.connection_timed_out) and isinstance(
            payload, dict
        ):
            try:
                self.context.channel = await self._sign_in(payload)
            except ConnectionRejectionError:
                await self.websocket.close(FORBIDDEN_CLOSE, REFUSED_REASON)
                return
            except UnavailableError as exc:
                await self.websocket.close(UNAVAILABLE_CLOSE, exc.refusal.message)
                return
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self.context.channel is not None:
            self._live.join(self.context.channel)

    async def _sign_in(self, params: dict[str, object]) -> Channel:
        """Authenticate the connection from its ``connection_init`` payload, as HTTP does
        a request from its header."""
        authorization = params.get("Authorization", params.get("authorization"))
        if authorization is not None and not isinstance(authorization, str):
            raise ConnectionRejectionError
        try:
            found = await authenticate_token(self._live.database, authorization)
        except InvalidTokenError:
            await self.context.rate_limiter.sign_in_failed(self.context.client_address)
            raise ConnectionRejectionError from None
        except ClientError as refused:
            raise UnavailableError(refused) from None
        context = self.context
        context.viewer = None if found is None else found.user
        context.loaders = Loaders(context.database, context.viewer)  # made before sign-in
        return Channel(
            self._live,
            token_id=None if found is None else found.token_id,
            viewer=context.viewer,
            authorization=authorization,
            address=context.client_address,
            close=self.websocket.close,
        )

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        channel = self.context.channel
        if not self.connection_acknowledged or channel is None:
            await super().handle_subscribe(message)  # closes: 4401 Unauthorized
            return
        try:
            message = await self._admitted(channel, message)
        except ClientError as refused:
            await self._refuse(message["id"], refused)
            return
        running = set(self.operations)
        await super().handle_subscribe(message)
        operation = self.operations.get(message["id"])
        if operation is None or message["id"] in running or operation.task is None:
            return
        self._live.started(channel)
        operation.task.add_done_callback(lambda _task: self._live.ended(channel))

    async def _admitted(self, channel: Channel, message: SubscribeMessage) -> SubscribeMessage:
        """``message``, with its document if it named a persisted one; raises the
        ClientError that refuses it."""
        reason = self._live.may_subscribe(channel)
        if reason is not None:
            raise LimitExceededError(reason)
        app = self._app
        retry_after = await self.context.rate_limiter.admit(channel.authorization, channel.address)
        if retry_after is not None:
            raise RateLimitedError(retry_after)
        payload = message["payload"]
        query = payload.get("query")
        app.check_size(query)
        resolved = await app.documents.document(query, payload.get("extensions"), is_get=False)
        app.check_size(resolved)
        return cast(SubscribeMessage, {**message, "payload": {**payload, "query": resolved}})

    async def _refuse(self, operation_id: str, refused: ClientError) -> None:
        extensions = {**(refused.extensions or {}), "requestId": current_request_id.get()}
        error = GraphQLError(refused.message, extensions=extensions)
        await self.send_message({"id": operation_id, "type": "error", "payload": [error.formatted]})

    async def _close_when_idle(self) -> None:
        """Close the connection once it runs no subscription and has said nothing for
        the idle timeout."""
        idle = self._live.settings.ws_idle_timeout_seconds
        while True:
            await asyncio.sleep(min(idle / 2, 5.0))
            now = time.monotonic()
            if self.operations:
                self._last_heard = now
            elif now - self._last_heard >= idle:
                await self.websocket.close(IDLE_CLOSE, "Idle for too long.")
                return
