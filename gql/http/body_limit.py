"""Request body limit: 413 before the body is parsed, chunked bodies included."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.http.sending import TrackedSend


class _TooLargeError(Exception):
    pass


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": f"The request body is larger than {limit} bytes.",
                     "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]},
        status_code=413,
    )  # fmt: skip


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLargeError
            return message

        tracked = TrackedSend(send)
        try:
            await self.app(scope, counting_receive, tracked)
        except _TooLargeError:
            if tracked.started:
                raise
            await _too_large(self.max_bytes)(scope, receive, send)
