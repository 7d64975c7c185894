"""The ASGI application: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from gql import playground
from gql.auth import InvalidTokenError, authenticate
from gql.context import Context
from gql.errors import ClientError, UnauthenticatedError, error_response
from gql.limits import BodyLimitMiddleware
from gql.loaders import Loaders
from gql.metrics import Metrics, MetricsMiddleware
from gql.operations import OperationLog
from gql.request_id import RequestIdMiddleware, current_request_id
from gql.schema import build_schema
from gql.settings import Settings
from persistence.engine import Database


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view, with authentication in front and our context."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        super().__init__(
            build_schema(settings, observers=[lambda: OperationLog(metrics)]),
            graphql_ide="graphiql" if settings.is_development else None,
            allow_queries_via_get=settings.is_development,
        )
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            database: Database = request.app.state.database
            try:
                request.state.viewer = await authenticate(
                    database, request.headers.get("authorization")
                )
            except InvalidTokenError:
                response = error_response(
                    UnauthenticatedError("The token is invalid, expired or revoked."),
                    401,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
                await response(scope, receive, send)
                return
            except ClientError as refused:  # e.g. the database is unreachable: 503
                await error_response(refused, refused.status or 400)(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def get_context(self, request: Any, response: Any) -> Context:
        database: Database = request.app.state.database
        viewer = request.state.viewer
        return Context(
            settings=self.settings,
            database=database,
            viewer=viewer,
            loaders=Loaders.for_request(database, viewer),
            request_id=current_request_id.get() or "-",
            client_address=request.client.host if request.client else None,
            user_agent=(request.headers.get("user-agent") or "")[:512] or None,
            response=response,
        )

    async def render_graphql_ide(self, request: Any) -> Response:
        return playground.render_page()

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.database = database = Database.from_settings(settings)
        metrics.watch_pool(database.engine.pool.checkedout)  # type: ignore[attr-defined]
        try:
            yield
        finally:
            await database.dispose()

    async def health(_request: Request) -> Response:
        """The process is up; says nothing about the database."""
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        """The database answers within the configured timeout."""
        database: Database = request.app.state.database
        try:
            async with asyncio.timeout(settings.ready_timeout_seconds):
                async with database.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except Exception:  # any failure to answer means: not ready
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    routes: list[BaseRoute] = [
        Route("/graphql", GraphQLApp(settings, metrics), methods=["GET", "POST"]),
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics.endpoint),
    ]
    if settings.is_development:
        routes.append(Mount("/graphql/assets", app=playground.assets_app()))
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(MetricsMiddleware, metrics=metrics),
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
            max_age=600,
        ),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
