"""For middleware that may answer in place of the app when the app fails part-way."""

from __future__ import annotations

from starlette.types import Message, Send


class TrackedSend:
    """``send``, noting whether the response has started: once it has, nothing else can
    answer the request (the server can only close the connection)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)
