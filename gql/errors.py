"""Errors as clients see them.

Expected failures of a mutation are data: members of the mutation's result union, all
implementing ``interface Error``. Everything else becomes a top-level GraphQL error
whose ``extensions`` carry a stable ``code`` and the ``requestId``; an unexpected
exception is masked as ``INTERNAL_SERVER_ERROR`` and logged in full on the server. A
transient database fault is no bug: it is answered 503 with ``Retry-After``, as
``SERVICE_UNAVAILABLE`` (the database cannot be reached) or ``TIMEOUT`` (a lock or
statement took too long), and logged as a one-line warning.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from typing import Any, Final

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from starlette.responses import JSONResponse, Response
from strawberry.extensions import SchemaExtension

from gql.redaction import RequestNames, SchemaNames
from gql.request_id import current_request_id
from persistence import errors as domain

logger = logging.getLogger("auditql.errors")

UNEXPECTED: Final = "Unexpected error."


# -- top-level errors -------------------------------------------------------------------


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


class UnauthenticatedError(ClientError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Sign in to do this.") -> None:
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
    fault = domain.transient_fault(exc) if exc is not None else None
    if fault is None:
        return None
    if isinstance(fault, domain.DatabaseTimeoutError):
        return TimedOutError()
    return ServiceUnavailableError()


def log_database_fault(exc: BaseException, where: str, request_id: str | None) -> None:
    """One warning line, without a traceback: an outage would otherwise flood the log
    with identical ones, and there is no bug to trace."""
    fault = domain.transient_fault(exc)
    logger.warning(
        "database fault in %s (request %s): %s: %s", where, request_id,
        type(fault).__name__, fault, extra={"request_id": request_id},
    )  # fmt: skip


def error_response(
    error: ClientError, status: int, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A whole HTTP response for an error refused before GraphQL runs (401, 415, 429,
    503), shaped like any GraphQL error so clients parse one format."""
    extensions = {**(error.extensions or {}), "requestId": current_request_id.get()}
    headers = dict(headers or {})
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(
        {"errors": [{"message": error.message, "extensions": extensions}]},
        status_code=status,
        headers=headers,
    )


# -- errors as data ----------------------------------------------------------------------


@strawberry.enum(description="What kind of expected failure an `Error` is.")
class ErrorCode(enum.Enum):
    VALIDATION_FAILED = "VALIDATION_FAILED"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FORBIDDEN = "FORBIDDEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"


@strawberry.interface(name="Error", description="An expected failure of a mutation.")
class Error:
    message: str = strawberry.field(description="A sentence for people; may change.")
    code: ErrorCode = strawberry.field(description="A stable code for programs.")


@strawberry.type(description="The input broke a rule; `field` names the input field.")
class ValidationError(Error):
    field: str | None = strawberry.field(description="The input field at fault, if one.")
    code: ErrorCode = ErrorCode.VALIDATION_FAILED


@strawberry.type(description="The object does not exist, or you may not see it.")
class NotFoundError(Error):
    code: ErrorCode = ErrorCode.NOT_FOUND


@strawberry.type(
    description="The object changed since you read it: `expectedVersion` is stale. "
    "Read it again and retry with `currentVersion`."
)
class ConflictError(Error):
    current_version: int | None = strawberry.field(description="The object's version now.")
    code: ErrorCode = ErrorCode.CONFLICT


@strawberry.type(description="Another object already has this value in `field`.")
class AlreadyExistsError(Error):
    field: str = strawberry.field(description="The input field whose value is taken.")
    code: ErrorCode = ErrorCode.ALREADY_EXISTS


@strawberry.type(description="You are signed in but not allowed to do this.")
class ForbiddenError(Error):
    code: ErrorCode = ErrorCode.FORBIDDEN


@strawberry.type(description="The email and password do not match an active account.")
class InvalidCredentialsError(Error):
    code: ErrorCode = ErrorCode.INVALID_CREDENTIALS


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def as_error(exc: domain.DomainError, *, fields: dict[str, str] | None = None) -> Error:
    """The `Error` a domain error stands for. ``fields`` maps model fields to the input
    fields a client sent (``post_id`` -> ``postId`` unless told otherwise)."""

    def field_name(field: str | None) -> str | None:
        if field is None:
            return None
        return (fields or {}).get(field, camel(field))

    if isinstance(exc, domain.NotFoundError):
        return NotFoundError(message=exc.message)
    if isinstance(exc, domain.ForbiddenError):
        return ForbiddenError(message=exc.message)
    if isinstance(exc, domain.ConflictError):
        return ConflictError(message=exc.message, current_version=exc.current_version)
    if isinstance(exc, domain.AlreadyExistsError):
        return AlreadyExistsError(message=exc.message, field=field_name(exc.field) or "value")
    if isinstance(exc, domain.InvalidReferenceError):
        return ValidationError(message=exc.message, field=field_name(exc.field))
    if isinstance(exc, domain.ValidationError):
        return ValidationError(message=exc.message, field=field_name(exc.field))
    raise exc


# -- the policy for top-level errors ------------------------------------------------------


def classify(error: GraphQLError) -> tuple[str, str]:
    """(code, message safe to show) for a top-level error."""
    original = error.original_error
    # Raised by us, a literal refused in validation, or the database down or busy (which
    # is no bug): its own message, never the exception's text.
    if client := _client_error(error):
        return client.code, client.message
    if error.path is None:
        # Not from a resolver: the document or its variables were refused before any
        # field ran (syntax, validation, a value that does not fit its type).
        if isinstance(error, GraphQLSyntaxError):
            return "GRAPHQL_PARSE_FAILED", error.message
        if original is not None:
            return "BAD_USER_INPUT", error.message
        return "GRAPHQL_VALIDATION_FAILED", error.message
    if isinstance(original, domain.DomainError):
        # A rule broken by an argument of a query (a stale cursor, a page too large).
        return "BAD_USER_INPUT", original.message
    return "INTERNAL_SERVER_ERROR", UNEXPECTED


class ErrorPolicy(SchemaExtension):
    """Gives every top-level error a code and the request id, and masks the rest. In
    production, messages name nothing of the schema the request did not name
    (:mod:`gql.redaction`)."""

    def on_operation(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        result = execution.result
        errors = getattr(result, "errors", None)
        if not errors:
            return
        context = execution.context
        request_id = getattr(context, "request_id", None)
        names: SchemaNames | None = getattr(execution.schema, "redaction", None)
        known = RequestNames(execution.query, execution.variables)

        def present(error: GraphQLError) -> GraphQLError:
            code, message = classify(error)
            if names is not None:
                message = names.redact(error, message, known)
            return self._present(error, request_id, code, message)

        result.errors = [present(error) for error in errors]  # type: ignore[union-attr]
        _set_status(getattr(context, "response", None), errors)

    def _present(
        self, error: GraphQLError, request_id: str | None, code: str, message: str
    ) -> GraphQLError:
        where = ".".join(map(str, error.path or ())) or "operation"
        original = error.original_error
        if original is not None and database_fault(original):
            log_database_fault(original, where, request_id)
        if code == "INTERNAL_SERVER_ERROR":
            logger.error(
                "unexpected error in %s (request %s)",
                where,
                request_id,
                exc_info=original or error,
                extra={"request_id": request_id},
            )
        client = _client_error(error)
        extensions: dict[str, Any] = {
            **(client.extensions or {} if client else {}),
            "code": code,
            "requestId": request_id,
        }
        return GraphQLError(
            message, nodes=error.nodes, source=error.source, positions=error.positions,
            path=error.path, extensions=extensions,
        )  # fmt: skip


def _client_error(error: GraphQLError) -> ClientError | None:
    """The ClientError behind ``error``; a transient database fault stands for one."""
    if isinstance(error, ClientError):
        return error
    original = error.original_error
    return original if isinstance(original, ClientError) else database_fault(original)


def _set_status(response: Response | None, errors: list[GraphQLError]) -> None:
    """The response takes the status of its gravest error that has one (503 before
    429), with its ``Retry-After``; partial results stay 200."""
    statused = [e for e in map(_client_error, errors) if e is not None and e.status]
    if response is None or not statused:
        return
    gravest = max(statused, key=lambda e: e.status or 0)
    response.status_code = gravest.status or 200
    if gravest.retry_after is not None:
        response.headers["Retry-After"] = str(gravest.retry_after)
