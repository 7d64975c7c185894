"""Errors as clients see them.

Expected failures of a mutation are data: members of the mutation's result union, all
implementing ``interface Error``. Everything else becomes a top-level GraphQL error
whose ``extensions`` carry a stable ``code`` and the ``requestId``; an unexpected
exception is masked as ``INTERNAL_SERVER_ERROR`` and logged in full on the server.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from typing import Any, Final

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from persistence import errors as domain

logger = logging.getLogger("auditql.errors")

UNEXPECTED: Final = "Unexpected error."


# -- top-level errors -------------------------------------------------------------------


class ClientError(GraphQLError):
    """An error the client caused and may read; never masked."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": self.code})


class BadUserInputError(ClientError):
    code = "BAD_USER_INPUT"


class UnauthenticatedError(ClientError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Sign in to do this.") -> None:
        super().__init__(message)


class NotAllowedError(ClientError):
    code = "FORBIDDEN"

    def __init__(self, message: str = "You are not allowed to do this.") -> None:
        super().__init__(message)


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
    if isinstance(error, ClientError):  # a literal refused during validation
        return error.code, error.message
    if isinstance(original, ClientError):
        return original.code, error.message
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
    """Gives every top-level error a code and the request id, and masks the rest."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if not errors:
            return
        request_id = getattr(self.execution_context.context, "request_id", None)
        result.errors = [self._present(error, request_id) for error in errors]  # type: ignore[union-attr]

    def _present(self, error: GraphQLError, request_id: str | None) -> GraphQLError:
        code, message = classify(error)
        if code == "INTERNAL_SERVER_ERROR":
            logger.error(
                "unexpected error in %s (request %s)",
                ".".join(map(str, error.path or ())) or "operation",
                request_id,
                exc_info=error.original_error or error,
                extra={"request_id": request_id},
            )
        extensions: dict[str, Any] = {"code": code, "requestId": request_id}
        return GraphQLError(
            message, nodes=error.nodes, source=error.source, positions=error.positions,
            path=error.path, extensions=extensions,
        )  # fmt: skip
