"""The last line of masking: an exception that escapes the app outside GraphQL execution
(authentication, the rate limiter, reading the body) is logged in full under the request
id and answered like a masked GraphQL error, never with Starlette's bare text 500.

It sits inside RequestIdMiddleware, which sets the id and echoes it; Starlette's own
error handler sits outside it and knows neither.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gql.errors import UNEXPECTED
from gql.http.request_id import current_request_id
from gql.http.sending import TrackedSend

logger = logging.getLogger("auditql.errors")


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except ClientDisconnect:
            # The client went away before sending its whole request: routine (a closed
            # tab, a load generator stopping), and there is nobody left to answer.
            logger.debug("client disconnected (request %s)", current_request_id.get())
        except Exception:
            request_id = current_request_id.get()
            logger.exception(
                "unexpected error outside GraphQL (request %s)", request_id,
                extra={"request_id": request_id},
            )  # fmt: skip
            if tracked.started:  # too late for an answer: the server closes the connection
                raise
            extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
            response = JSONResponse(
                {"errors": [{"message": UNEXPECTED, "extensions": extensions}]}, status_code=500
            )
            await response(scope, receive, send)
