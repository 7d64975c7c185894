"""``interface Error`` and its types: a mutation's expected failures, as data.

Each mutation returns a union of its success type and the errors it may meet; a domain
error (``persistence.errors``) becomes the member of the same meaning (:func:`as_error`).
"""

from __future__ import annotations

import enum

import strawberry

from persistence import errors


@strawberry.enum(description="What kind of expected failure an `Error` is.")
class ErrorCode(enum.Enum):
    VALIDATION_FAILED = "VALIDATION_FAILED"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FORBIDDEN = "FORBIDDEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"


@strawberry.interface(name="Error", description="An expected failure of a mutation.")
class ErrorType:
    message: str = strawberry.field(description="A sentence for people; may change.")
    code: ErrorCode = strawberry.field(description="A stable code for programs.")
    field: str | None = strawberry.field(
        default=None,
        description="The input field at fault (its name in the input, e.g. `postId`); "
        "null when no single field is.",
    )


@strawberry.type(
    name="ValidationError", description="The input broke a rule; `field` names the input field."
)
class ValidationErrorType(ErrorType):
    code: ErrorCode = ErrorCode.VALIDATION_FAILED


@strawberry.type(
    name="NotFoundError", description="The object does not exist, or you may not see it."
)
class NotFoundErrorType(ErrorType):
    code: ErrorCode = ErrorCode.NOT_FOUND


@strawberry.type(
    name="ConflictError",
    description="The object changed since you read it: `expectedVersion` is stale. "
    "Read it again and retry with `currentVersion`.",
)
class ConflictErrorType(ErrorType):
    current_version: int | None = strawberry.field(description="The object's version now.")
    code: ErrorCode = ErrorCode.CONFLICT


@strawberry.type(
    name="AlreadyExistsError", description="Another object already has this value in `field`."
)
class AlreadyExistsErrorType(ErrorType):
    code: ErrorCode = ErrorCode.ALREADY_EXISTS


@strawberry.type(name="ForbiddenError", description="You are signed in but not allowed to do this.")
class ForbiddenErrorType(ErrorType):
    code: ErrorCode = ErrorCode.FORBIDDEN


@strawberry.type(
    name="InvalidCredentialsError",
    description="The email and password do not match an active account.",
)
class InvalidCredentialsErrorType(ErrorType):
    code: ErrorCode = ErrorCode.INVALID_CREDENTIALS


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def as_error(exc: errors.DomainError, *, fields: dict[str, str] | None = None) -> ErrorType:
    """The `Error` a domain error stands for. ``fields`` maps model fields to the input
    fields a client sent (``post_id`` -> ``postId`` unless told otherwise)."""

    def field_name(field: str | None) -> str | None:
        if field is None:
            return None
        return (fields or {}).get(field, camel(field))

    if isinstance(exc, errors.NotFoundError):
        return NotFoundErrorType(message=exc.message)
    if isinstance(exc, errors.ForbiddenError):
        return ForbiddenErrorType(message=exc.message)
    if isinstance(exc, errors.ConflictError):
        return ConflictErrorType(message=exc.message, current_version=exc.current_version)
    if isinstance(exc, errors.AlreadyExistsError):
        return AlreadyExistsErrorType(message=exc.message, field=field_name(exc.field) or "value")
    if isinstance(exc, errors.InvalidReferenceError):
        return ValidationErrorType(message=exc.message, field=field_name(exc.field))
    if isinstance(exc, errors.ValidationError):
        return ValidationErrorType(message=exc.message, field=field_name(exc.field))
    raise exc
