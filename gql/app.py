"""The ASGI application: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from gql import playground
from gql.auth import InvalidTokenError, authenticate
from gql.context import Context
from gql.loaders import Loaders
from gql.schema import build_schema
from gql.settings import Settings
from persistence.engine import Database

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

UNAUTHENTICATED_BODY = {
    "errors": [
        {
            "message": "The token is invalid, expired or revoked.",
            "extensions": {"code": "UNAUTHENTICATED"},
        }
    ]
}


def request_id_of(request: Request) -> str:
    """The caller's X-Request-ID when it is sane, else a new one."""
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view, with authentication in front and our context."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(settings),
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
                response = JSONResponse(
                    UNAUTHENTICATED_BODY,
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def get_context(self, request: Any, response: Any) -> Context:
        database: Database = request.app.state.database
        viewer = request.state.viewer
        request_id = request_id_of(request)
        response.headers["X-Request-ID"] = request_id
        return Context(
            settings=self.settings,
            database=database,
            viewer=viewer,
            loaders=Loaders.for_request(database, viewer),
            request_id=request_id,
            client_address=request.client.host if request.client else None,
            user_agent=(request.headers.get("user-agent") or "")[:512] or None,
        )

    async def render_graphql_ide(self, request: Any) -> Response:
        return playground.render_page()

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.database = Database.from_settings(settings)
        try:
            yield
        finally:
            await app.state.database.dispose()

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes: list[BaseRoute] = [
        Route("/graphql", GraphQLApp(settings), methods=["GET", "POST"]),
        Route("/health", health),
    ]
    if settings.is_development:
        routes.append(Mount("/graphql/assets", app=playground.assets_app()))
    return Starlette(routes=routes, lifespan=lifespan)
