"""The ASGI application: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import graphql
import graphql.utilities
import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from domain.token_cache import TokenCache
from gql.engine.operation_log import OperationLog
from gql.errors import (
    BadRequestError,
    BadUserInputError,
    ClientError,
    DocumentTooLargeError,
    RateLimitedError,
    UnauthenticatedError,
)
from gql.http import playground
from gql.http.authentication import InvalidTokenError, authenticate
from gql.http.body_limit import BodyLimitMiddleware
from gql.http.metrics import Metrics, MetricsMiddleware
from gql.http.persisted import PersistedDocuments, TrustedDocuments, store_for
from gql.http.rate_limit import Budgets, RateLimiter
from gql.http.readiness import Readiness
from gql.http.request_id import RequestIdMiddleware, current_request_id
from gql.http.responses import error_response
from gql.http.turns import FairTurns, FairTurnsMiddleware
from gql.http.unexpected import UnexpectedErrorMiddleware
from gql.live.hub import Live
from gql.live.transport import LiveConnection, TextFrames
from gql.schema.build import build_schema
from gql.schema.context import Context
from gql.schema.loaders import Loaders
from gql.settings import Settings
from persistence.engine import Database
from persistence.integrity import sequencer_of
from persistence.replicas import ReplicaSet, RequestReads, decode_token

CONSISTENCY_HEADER = "X-Consistency-Token"


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view, with refusals and authentication in front and our
    context; every refusal is a GraphQL error body. Subscriptions run over WebSocket on
    the same path (:mod:`gql.live.transport`)."""

    graphql_transport_ws_handler_class = LiveConnection
    websocket_adapter_class = TextFrames

    def __init__(self, settings: Settings, metrics: Metrics, documents: PersistedDocuments) -> None:
        super().__init__(
            build_schema(settings, observers=[lambda: OperationLog(metrics)]),
            graphql_ide="graphiql" if settings.is_development else None,
            # Queries only (never mutations); in production, only documents the server
            # holds (gql.http.persisted).
            allow_queries_via_get=True,
            # graphql-transport-ws only: the legacy graphql-ws protocol stays off.
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL] if settings.live_updates else [],
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            allowed_origins=settings.cors_allowed_origins,
        )
        self.settings = settings
        self.documents = documents

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._handshake(scope, receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        response = (
            await self._refusal(request)
            or await self._authentication_refusal(request)
            or await self._serve(request)
        )
        await response(scope, receive, send)

    async def _handshake(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake spends one request of its address's rate limit (429
        when it has none left); the connection signs in with ``connection_init``."""
        current_request_id.set(uuid.uuid4().hex)
        websocket = WebSocket(scope, receive, send)
        limiter: RateLimiter = websocket.app.state.rate_limiter
        retry_after = await limiter.admit(None, client_address(websocket))
        if retry_after is not None:
            await websocket.send_denial_response(error_response(RateLimitedError(retry_after), 429))
            return
        await super().__call__(scope, receive, send)

    async def _refusal(self, request: Request) -> Response | None:
        """A response refusing the request at once, if it must be: not JSON, or over its
        rate limit."""
        if request.method == "POST" and _media_type(request) != "application/json":
            # Forms and text/plain are what a browser sends cross-site without asking
            # (no CORS preflight): refusing them makes such a request change nothing.
            return error_response(
                BadUserInputError("Send the operation as JSON (Content-Type: application/json)."),
                415,
            )
        limiter: RateLimiter = request.app.state.rate_limiter
        retry_after = await limiter.admit(
            request.headers.get("authorization"), client_address(request)
        )
        if retry_after is not None:
            return error_response(RateLimitedError(retry_after), 429)
        return None

    async def _authentication_refusal(self, request: Request) -> Response | None:
        """A response refusing a token that identifies no active user, if it does not;
        ``request.state.viewer`` otherwise."""
        authorization = request.headers.get("authorization")
        try:
            request.state.viewer = await authenticate(
                request.app.state.database, authorization, request.app.state.tokens
            )
        except InvalidTokenError:
            await request.app.state.rate_limiter.sign_in_failed(client_address(request))
            return error_response(
                UnauthenticatedError("The token is invalid, expired or revoked."),
                401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        except ClientError as refused:  # e.g. the database is unreachable: 503
            return error_response(refused, refused.status or 400)
        return None

    async def _serve(self, request: Request) -> Response:
        try:
            response: Response = await self._run_once(request)
            if _replica_failed(request, response):
                # A replica that failed mid-read costs a retry on the primary, not the
                # read: queries change nothing (a request that wrote read the primary).
                request.state.primary_only = True
                response = await self._run_once(request)
        except ClientError as refused:
            return error_response(refused, refused.status or 400)
        except HTTPException as refused:
            return error_response(BadRequestError(refused.reason), refused.status_code)
        return response

    async def _run_once(self, request: Request) -> Response:
        """One run of the operation; the rows its loaders hold are let go once it has
        answered. graphql-core's execution context refers to itself, so the context and
        its loaders only go when the collector finds that cycle; until then every row
        the request loaded waited with them (under 32 concurrent reads, most of the
        memory above the idle figure)."""
        try:
            return await self.run(request)
        finally:
            context: Context | None = getattr(request.state, "context", None)
            if context is not None:
                context.loaders.forget()

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """The request's operation, its document resolved if it was named by hash
        (:mod:`gql.http.persisted`); a document over the size limit is refused before
        it is parsed."""
        data = await super().parse_http_body(request)
        if isinstance(data, list):
            return data  # refused as a batch by strawberry
        self.check_size(data.query)
        query = await self.documents.document(
            data.query, data.extensions, is_get=request.method == "GET"
        )
        if query is not data.query:  # named by hash: the stored document
            self.check_size(query)
        if _subscription(query, data.operation_name):
            raise BadRequestError(
                "Subscriptions run over WebSocket (graphql-transport-ws) on this path."
            )
        return dataclasses.replace(data, query=query)

    def check_size(self, query: str | None) -> None:
        limit = self.settings.max_document_bytes
        # Each character is at least a byte: a long string needs no encoding.
        if query is not None and (len(query) > limit or len(query.encode()) > limit):
            raise DocumentTooLargeError(limit)

    async def get_context(self, request: Any, response: Any) -> Context:
        database: Database = request.app.state.database
        reads = None
        websocket = isinstance(request, WebSocket)
        if (
            database.replicas is not None
            and not websocket  # a subscription reads each event once committed: the primary
            and not getattr(request.state, "primary_only", False)
        ):
            token = decode_token(request.headers.get(CONSISTENCY_HEADER))
            reads = RequestReads(database.reader, database.replicas, token)
            database = dataclasses.replace(database, reader=reads)
        viewer = getattr(request.state, "viewer", None)  # a WebSocket signs in later
        context = Context(
            settings=self.settings,
            database=database,
            viewer=viewer,
            loaders=Loaders(database, viewer),
            rate_limiter=request.app.state.rate_limiter,
            request_id=current_request_id.get() or "-",
            client_address=client_address(request),
            user_agent=(request.headers.get("user-agent") or "")[:512] or None,
            response=None if websocket else response,
            reads=reads,
            live=request.app.state.live,
        )
        request.state.context = context
        return context

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        """The response, with the consistency token of what the request committed (in
        ``extensions`` and the ``X-Consistency-Token`` header), with replicas."""
        data = await super().process_result(request, result)
        context: Context | None = getattr(request.state, "context", None)
        token = context.consistency_token() if context is not None else None
        if token is not None and context is not None and context.response is not None:
            context.response.headers[CONSISTENCY_HEADER] = token
            data["extensions"] = {**(data.get("extensions") or {}), "consistencyToken": token}
        return data

    def should_render_graphql_ide(self, request: Any) -> bool:
        """A GET naming a persisted document by hash alone is an operation, not a
        browser asking for the playground."""
        params = request.query_params
        return super().should_render_graphql_ide(request) and params.get("extensions") is None

    async def render_graphql_ide(self, request: Any) -> Response:
        return playground.render_page(host=request.headers.get("host"))

    def decode_json(self, data: str | bytes) -> object:
        # orjson is several times faster, but refuses a lone surrogate ("\\ud800"),
        # which the standard library decodes (and the API then refuses as text).
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = json.loads(data)
        if not isinstance(value, dict | list):
            raise HTTPException(400, 'Expected a JSON object, e.g. {"query": "{ viewer { id } }"}.')
        return value

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def _subscription(query: str | None, operation_name: str | None) -> bool:
    """Whether the operation to run is a subscription (which HTTP does not serve). Only a
    document that says so is parsed here; a malformed one is left to GraphQL to refuse."""
    if query is None or "subscription" not in query:
        return False
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError:
        return False
    operation = graphql.utilities.get_operation_ast(document, operation_name)
    return operation is not None and operation.operation is graphql.OperationType.SUBSCRIPTION


def _replica_failed(request: Request, response: Response) -> bool:
    """The request read from a replica and was answered 503: the replica stopped
    answering under it (or the primary did, and the retry will say so again)."""
    context: Context | None = getattr(request.state, "context", None)
    if context is None or context.reads is None or context.units:
        return False  # a request that began writing is never run twice
    used = context.reads.used_replica
    if used is None or response.status_code != 503:
        return False
    used.answering = False  # out of rotation until its next probe answers
    return True


def client_address(request: HTTPConnection) -> str:
    """The caller's address: the peer's, or the forwarded one when uvicorn was told to
    trust the proxy that sent it (AUDITQL_TRUST_PROXY_HEADERS, AUDITQL_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "unknown"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.database = database = Database.from_settings(settings)
        app.state.rate_limiter = RateLimiter(
            settings.rate_limit_storage,
            Budgets.parse(
                settings.rate_limit_per_token,
                settings.rate_limit_per_address,
                settings.sign_in_failure_limit,
            ),
        )
        app.state.tokens = tokens = TokenCache(settings.token_cache_seconds)
        database.commit_hooks.append(tokens.committed)
        app.state.readiness = readiness = Readiness(database, settings.ready_timeout_seconds)
        metrics.watch_pool(database.connections_in_use)
        # Said once at start-up, in the background: serving does not wait for it.
        background = [asyncio.create_task(readiness.check())]
        if database.replicas is not None:
            metrics.watch_replicas(database.replicas)
            background.append(asyncio.create_task(database.replicas.watch()))
        app.state.live = live = Live(settings, database) if settings.live_updates else None
        if live is not None:
            metrics.watch_live(live)
            background.append(asyncio.create_task(live.run()))
        sequencer = sequencer_of(settings) if settings.audit_sequencer else None
        if sequencer is not None:
            metrics.watch_sequencer(sequencer)
            background.append(asyncio.create_task(sequencer.run()))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # its connection back in the pool before the pool closes
            if sequencer is not None:
                await sequencer.close()
            await database.dispose()

    async def health(_request: Request) -> Response:
        """The process is up; says nothing about the database."""
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        """The database answers, within the configured timeout, and is at the migration
        head the code expects."""
        readiness: Readiness = request.app.state.readiness
        replicas: ReplicaSet | None = request.app.state.database.replicas
        # Replicas are reported, never a reason to be unready: the primary serves all.
        shown = {"replicas": replicas.status()} if replicas is not None else {}
        if await readiness.check() is not None:
            return JSONResponse({"status": "unavailable", **shown}, status_code=503)
        return JSONResponse({"status": "ready", **shown})

    documents = PersistedDocuments(
        store_for(settings.rate_limit_storage, settings.persisted_query_cache_size),
        TrustedDocuments.load(settings.trusted_documents) if settings.trusted_documents else None,
        get_needs_known=not settings.is_development,
    )
    graphql = GraphQLApp(settings, metrics, documents)
    routes: list[BaseRoute] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics.endpoint),
    ]
    if settings.live_updates:
        routes.append(WebSocketRoute("/graphql", graphql))
    if settings.is_development:
        routes.append(Mount("/graphql/assets", app=playground.assets_app()))
    middleware = [
        # First: a request waits for its turn before anything else is done for it.
        Middleware(FairTurnsMiddleware, turns=FairTurns(settings.max_concurrent_requests)),
        Middleware(RequestIdMiddleware),
        Middleware(UnexpectedErrorMiddleware),
        Middleware(MetricsMiddleware, metrics=metrics),
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", CONSISTENCY_HEADER],
            # Retry-After: a browser client may read how long to back off (429, 503).
            expose_headers=["X-Request-ID", "Retry-After", CONSISTENCY_HEADER],
            max_age=600,
        ),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={StarletteHTTPException: http_refusal},
    )


async def http_refusal(_request: Request, exc: Exception) -> Response:
    """A wrong path or method (404, 405) answered as a GraphQL error, like every
    other refusal."""
    assert isinstance(exc, StarletteHTTPException)
    return error_response(
        BadRequestError(exc.detail), exc.status_code, headers=dict(exc.headers or {})
    )
