"""One log line and one metric per GraphQL operation: name, duration, outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from gql.http.metrics import Metrics

logger = logging.getLogger("auditql.operations")


class OperationLog(SchemaExtension):
    """Register as a factory (``lambda: OperationLog(metrics)``): one per request."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        name = self.metrics.operation_label(context.operation_name)
        errors = getattr(context.result, "errors", None) or []
        outcome = (errors[0].extensions or {}).get("code", "ERROR") if errors else "ok"
        self.metrics.operations.labels(name, outcome).inc()
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        logger.info(
            "graphql %s %s %.1fms", name, outcome, duration_ms,
            extra={"operation": name, "outcome": outcome, "duration_ms": duration_ms},
        )  # fmt: skip
