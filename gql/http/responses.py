"""Whole HTTP responses for requests refused before GraphQL runs (401, 413, 415, 429,
500, 503), shaped like any GraphQL error so clients parse one format."""

from __future__ import annotations

from starlette.responses import JSONResponse

from gql.errors import ClientError
from gql.http.request_id import current_request_id


def error_response(
    error: ClientError, status: int, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The response refusing a request with ``error``: one GraphQL error carrying its
    code, retry-after and the request id."""
    extensions = {**(error.extensions or {}), "requestId": current_request_id.get()}
    headers = dict(headers or {})
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(
        {"errors": [{"message": error.message, "extensions": extensions}]},
        status_code=status,
        headers=headers,
    )
