"""A request id for every request: the caller's ``X-Request-ID`` when it is sane, else
a new one; echoed in the response and carried by every log line and audit entry of the
request. An id that carries an API token is not sane: it would be stored and logged."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from persistence.security import TOKEN_PREFIX

current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

_SANE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        sane = _SANE.fullmatch(given) and TOKEN_PREFIX not in given
        request_id = given if sane else uuid.uuid4().hex
        token = current_request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)
