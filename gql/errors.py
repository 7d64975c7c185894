"""Top-level GraphQL errors: what a client is told when an operation fails as a whole.

Each carries a stable ``extensions.code`` (and, from the error policy, the request
id). Expected failures of a mutation are not these: they are data, members of the
mutation's result union (:mod:`gql.schema.build.types.error`). An unexpected exception is
masked as ``INTERNAL_SERVER_ERROR`` and logged in full on the server. A transient
database fault is no bug: it is answered 503 with ``Retry-After``, as
``SERVICE_UNAVAILABLE`` (the database cannot be reached) or ``TIMEOUT`` (a lock or
statement took too long), and logged as a one-line warning.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from graphql import GraphQLError

from persistence.errors import DatabaseTimeoutError, transient_fault

logger = logging.getLogger("auditql.errors")

UNEXPECTED: Final = "Unexpected error."


class ClientError(GraphQLError):
    """An error the client caused (or may act on) and may read; never masked.

    ``status`` is the HTTP status the whole response takes when this error is in it
    (None: 200, as GraphQL over ``application/json`` answers); ``retry_after`` the
    seconds a client should wait before retrying, sent as ``Retry-After``."""

    code = "BAD_USER_INPUT"
    status: int | None = None

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        extensions: dict[str, Any] = {"code": self.code}
        if retry_after is not None:
            extensions["retryAfter"] = retry_after
        super().__init__(message, extensions=extensions)
        self.retry_after = retry_after


class BadUserInputError(ClientError):
    code = "BAD_USER_INPUT"


class BadRequestError(ClientError):
    """The HTTP request itself is not a GraphQL request this server takes."""

    code = "BAD_REQUEST"


class DocumentTooLargeError(ClientError):
    code = "DOCUMENT_TOO_LARGE"
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The GraphQL document is larger than {limit:,} bytes; send large values as variables."
        )


class PersistedQueryNotFoundError(ClientError):
    """A hash-only request for a document this server does not hold: Apollo's and
    urql's persisted-query links answer it by sending the document with its hash.
    The message is the one those links look for."""

    code = "PERSISTED_QUERY_NOT_FOUND"
    status = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class DocumentNotTrustedError(ClientError):
    """The server runs only the trusted documents of its manifest, or (a GET in
    production) only documents it already holds."""

    code = "PERSISTED_QUERY_REQUIRED"


class UnauthenticatedError(ClientError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Sign in to do this.") -> None:
        super().__init__(message)


class NotFoundError(ClientError):
    """No such object, or none the viewer may see: the two are not told apart."""

    code = "NOT_FOUND"

    def __init__(self, message: str = "There is no such object that you may see.") -> None:
        super().__init__(message)


class NotAllowedError(ClientError):
    code = "FORBIDDEN"

    def __init__(self, message: str = "You are not allowed to do this.") -> None:
        super().__init__(message)


class RateLimitedError(ClientError):
    code = "RATE_LIMITED"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests; retry in {retry_after} s.", retry_after=retry_after)


class ServiceUnavailableError(ClientError):
    """The database is unreachable or too busy: a transient failure worth retrying."""

    code = "SERVICE_UNAVAILABLE"
    status = 503

    def __init__(
        self, message: str = "The service is temporarily unavailable; retry shortly.",
        *, retry_after: int = 2,
    ) -> None:  # fmt: skip
        super().__init__(message, retry_after=retry_after)


class TimedOutError(ClientError):
    """A statement waited longer than the database allows (lock or statement timeout):
    the row or table is busy; the same request will likely succeed shortly."""

    code = "TIMEOUT"
    status = 503

    def __init__(
        self, message: str = "The request took too long in the database; retry shortly.",
        *, retry_after: int = 1,
    ) -> None:  # fmt: skip
        super().__init__(message, retry_after=retry_after)


def database_fault(exc: BaseException | None) -> ClientError | None:
    """What a client is told when ``exc`` is a transient database fault (None if it is
    not one): its message and code never carry the exception's text."""
    fault = transient_fault(exc) if exc is not None else None
    if fault is None:
        return None
    if isinstance(fault, DatabaseTimeoutError):
        return TimedOutError()
    return ServiceUnavailableError()


def log_database_fault(exc: BaseException, where: str, request_id: str | None) -> None:
    """One warning line, without a traceback: an outage would otherwise flood the log
    with identical ones, and there is no bug to trace."""
    fault = transient_fault(exc)
    logger.warning(
        "database fault in %s (request %s): %s: %s", where, request_id,
        type(fault).__name__, fault, extra={"request_id": request_id},
    )  # fmt: skip
