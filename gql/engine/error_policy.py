"""The error policy: every top-level error gets a code and the request id; unexpected
ones are masked and logged in full; in production no message names what the request
did not (:mod:`gql.engine.redaction`); the HTTP status follows the gravest error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from starlette.responses import Response
from strawberry.extensions import SchemaExtension

from gql.engine.redaction import RequestNames, SchemaNames
from gql.errors import UNEXPECTED, ClientError, database_fault, log_database_fault, logger
from persistence.errors import DomainError


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
    if isinstance(original, DomainError):
        # A rule broken by an argument of a query (a stale cursor, a page too large).
        return "BAD_USER_INPUT", original.message
    return "INTERNAL_SERVER_ERROR", UNEXPECTED


class ErrorPolicy(SchemaExtension):
    """Gives every top-level error a code and the request id, and masks the rest. In
    production, messages name nothing of the schema the request did not name
    (:mod:`gql.engine.redaction`)."""

    def on_operation(self) -> Iterator[None]:
        self._streamed = False
        yield
        if not self._streamed:  # a stream's results were each presented as they went
            self._present_errors(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Each result of a subscription, as it is sent."""
        self._streamed = True
        self._present_errors(result)
        yield

    def _present_errors(self, result: Any) -> None:
        errors = getattr(result, "errors", None)
        if not errors:
            return
        execution = self.execution_context
        context = execution.context
        request_id = getattr(context, "request_id", None)
        names: SchemaNames | None = getattr(execution.schema, "redaction", None)
        known = RequestNames(execution.query, execution.variables)

        def present(error: GraphQLError) -> GraphQLError:
            code, message = classify(error)
            if names is not None:
                message = names.redact(error, message, known)
            return self._present(error, request_id, code, message)

        result.errors = [present(error) for error in errors]
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
