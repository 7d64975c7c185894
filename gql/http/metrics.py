"""Prometheus metrics, in a registry of the app's own (several apps may share a process).

- ``auditql_http_requests_total{method,path,status}`` and
  ``auditql_http_request_duration_seconds{method,path}``
- ``auditql_graphql_operations_total{operation,outcome}``: outcome is ``ok`` or the
  first error code, e.g. ``BAD_USER_INPUT``
- ``auditql_db_pool_connections_in_use``
- with replicas: ``auditql_replica_up{replica}``, ``auditql_replica_in_rotation{replica}``,
  ``auditql_replica_lag_seconds{replica}``, ``auditql_reads_total{target}`` (``primary``
  or a replica) and ``auditql_read_waits_total{outcome}`` (reads whose consistency token
  a replica had not replayed yet: ``replica`` when one did in time, ``primary`` when
  the wait ran out)
- with the audit sequencer in this process: ``auditql_audit_sequencer_passes_total``,
  ``auditql_audit_sequenced_entries_total`` and ``auditql_audit_sequencer_lag_seconds``
  (from the commit of the newest entry its last pass took to that pass; PostgreSQL)
- with live updates: ``auditql_live_connections``, ``auditql_live_subscriptions``,
  ``auditql_live_events_delivered_total``, ``auditql_live_events_dropped_total`` and
  ``auditql_live_delivery_lag_seconds`` (a histogram: from an event's commit to the
  moment it was sent)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.live.hub import Live
from persistence.chain import Sequencer
from persistence.replicas import ReplicaSet
from persistence.security import TOKEN_PREFIX

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MAX_OPERATION_NAMES = 500
# Paths are labels: only known routes, so a scanner cannot blow up the cardinality.
_ROUTES = ("/graphql/assets", "/graphql", "/health", "/ready", "/metrics")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "auditql_http_requests", "HTTP requests.", ["method", "path", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "auditql_http_request_duration_seconds", "HTTP request latency.",
            ["method", "path"], registry=self.registry,
        )  # fmt: skip
        self.operations = Counter(
            "auditql_graphql_operations", "GraphQL operations by name and outcome.",
            ["operation", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.pool_in_use = Gauge(
            "auditql_db_pool_connections_in_use", "Database connections checked out.",
            registry=self.registry,
        )  # fmt: skip
        self._seen: set[str] = set()

    def operation_label(self, name: str | None) -> str:
        """Operation names come from clients: keep sane ones, a bounded number of them."""
        if name is None:
            return "anonymous"
        if not _NAME.fullmatch(name) or TOKEN_PREFIX in name:  # a label is no place for a secret
            return "invalid"
        if name not in self._seen and len(self._seen) >= _MAX_OPERATION_NAMES:
            return "other"
        self._seen.add(name)
        return name

    def watch_pool(self, checked_out: Callable[[], int]) -> None:
        self.pool_in_use.set_function(checked_out)

    def watch_replicas(self, replicas: ReplicaSet) -> None:
        self.registry.register(_ReplicaCollector(replicas))

    def watch_sequencer(self, sequencer: Sequencer) -> None:
        self.registry.register(_SequencerCollector(sequencer))

    def watch_live(self, live: Live) -> None:
        self.registry.register(_LiveCollector(live))
        lag = Histogram(
            "auditql_live_delivery_lag_seconds",
            "From an event's commit to its delivery to a subscriber.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        live.observe_lag = lag.observe

    async def endpoint(self, _request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _ReplicaCollector(Collector):
    """Each replica's state and what routing did, read when /metrics is scraped."""

    def __init__(self, replicas: ReplicaSet) -> None:
        self._replicas = replicas

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("auditql_replica_up", "The replica answers.", labels=["replica"])
        rotation = GaugeMetricFamily(
            "auditql_replica_in_rotation", "The replica serves reads.", labels=["replica"]
        )
        lag = GaugeMetricFamily(
            "auditql_replica_lag_seconds", "How far the replica is behind.", labels=["replica"]
        )
        for status in self._replicas.status():
            name = status["replica"]
            up.add_metric([name], status["state"] == "up")
            rotation.add_metric([name], status["inRotation"])
            if status["lagSeconds"] is not None:
                lag.add_metric([name], status["lagSeconds"])
        counts = self._replicas.counts
        reads = CounterMetricFamily("auditql_reads", "Reads by where they went.", labels=["target"])
        for target, count in counts.reads.items():
            reads.add_metric([target], count)
        waits = CounterMetricFamily(
            "auditql_read_waits", "Reads that waited for a replica to replay their token.",
            labels=["outcome"],
        )  # fmt: skip
        for outcome, count in counts.waits.items():
            waits.add_metric([outcome], count)
        yield from (up, rotation, lag, reads, waits)


class _SequencerCollector(Collector):
    def __init__(self, sequencer: Sequencer) -> None:
        self._sequencer = sequencer

    def collect(self) -> Iterator[Metric]:
        sequencer = self._sequencer
        yield CounterMetricFamily(
            "auditql_audit_sequencer_passes", "Sequencer passes run by this process.",
            value=sequencer.passes,
        )  # fmt: skip
        yield CounterMetricFamily(
            "auditql_audit_sequenced_entries", "Audit entries this process gave positions.",
            value=sequencer.sequenced,
        )  # fmt: skip
        if sequencer.lag is not None:
            yield GaugeMetricFamily(
                "auditql_audit_sequencer_lag_seconds",
                "From the commit of the newest entry the last pass took to that pass.",
                value=sequencer.lag,
            )


class _LiveCollector(Collector):
    def __init__(self, live: Live) -> None:
        self._live = live

    def collect(self) -> Iterator[Metric]:
        live = self._live
        yield GaugeMetricFamily(
            "auditql_live_connections", "Open WebSocket connections.", value=live.connections
        )
        yield GaugeMetricFamily(
            "auditql_live_subscriptions", "Subscriptions running.", value=live.bus.subscriptions
        )
        yield CounterMetricFamily(
            "auditql_live_events_delivered", "Events sent to subscribers.", value=live.delivered
        )
        yield CounterMetricFamily(
            "auditql_live_events_dropped",
            "Events subscribers that fell behind never received (they resume by cursor).",
            value=live.bus.dropped,
        )


def route_of(path: str) -> str:
    return next((route for route in _ROUTES if path.startswith(route)), "other")


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            path, method = route_of(scope["path"]), scope["method"]
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.latency.labels(method, path).observe(time.perf_counter() - started)
