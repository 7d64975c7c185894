"""Running the app under uvicorn, with a graceful stop that exits 0: one process, or
several on one address under uvicorn's supervisor; in development, with the playground's
assets installed in the background when they are missing."""

from __future__ import annotations

import gc
import logging
import signal
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from gql.cli.config import load_settings
from gql.cli.logs import configure_logging
from gql.http import playground
from gql.http.app import create_app
from gql.settings import Settings

rate_limit_log = logging.getLogger("auditql.rate_limit")


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # uvicorn re-raises a captured signal after shutting down, so SIGTERM would end
        # the process with status -15 even after a clean, graceful stop. A graceful stop
        # is a success: exit 0 (orchestrators read anything else as a crash).
        # Ref: uvicorn/server.py Server.capture_signals (uvicorn is pinned).
        if sig == signal.SIGTERM:
            self._captured_signals.remove(sig)


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, refusing new connections as soon as it is told to stop.

    Each worker closes its copy of the listening socket on SIGTERM, but the supervisor
    holds one too: while it waits for the workers, the kernel would go on completing
    connections that nobody accepts, reset when it exits, instead of refusing them at
    once as one process does. Ref: uvicorn/supervisors/multiprocess.py (uvicorn is
    pinned)."""

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()

    def _stop_listening(self) -> None:
        for sock in self.sockets:
            sock.close()


def _tune_garbage_collector() -> None:
    """Fewer, cheaper collections. Everything built so far (modules, the schema, the
    app) lives as long as the process: frozen, no collection scans it again. Frozen as
    it is, without a full collection first: that found 20 unreachable objects (2 KB; a
    few thousand after a migration in development) among 140,000, and took 60-100 ms
    of the start. A read allocates thousands of short-lived objects (rows, resolver
    frames), so the youngest generation may grow to 10,000 before it is collected
    instead of 700. The older thresholds stay low: at 50,000/20/100 a full collection
    became so rare that peak memory under 32 concurrent reads doubled (127 -> 240 MB,
    bench/)."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def serve(settings: Settings, host: str, port: int, *, workers: int = 1) -> None:
    """Serve until SIGTERM or Ctrl-C. On SIGTERM new connections are refused at once,
    requests in flight get ``shutdown_grace_seconds`` to finish, then the database pool
    closes (the app's lifespan). Production mode never installs anything.

    With ``workers`` above 1 this process binds the address and supervises that many
    worker processes sharing it (:func:`_supervise`)."""
    if settings.is_development:
        playground.install_missing_assets()
    if workers > 1:
        _supervise(settings, host, port, workers)
        return
    app = create_app(settings)
    _tune_garbage_collector()
    _Server(_config(settings, app, host, port)).run()


def worker_app() -> Starlette:
    """A worker process's app. Workers are started afresh (multiprocessing's spawn), so
    each reads the same ``AUDITQL_*`` environment as the supervisor, which has already
    checked it, and sets up logging and the collector as one process does."""
    settings = load_settings()
    configure_logging(settings)
    app = create_app(settings)
    _tune_garbage_collector()
    return app


def _supervise(settings: Settings, host: str, port: int, workers: int) -> None:
    """uvicorn's supervisor: it binds the socket, starts the workers (each loads
    :func:`worker_app`), replaces a worker that dies or stops answering its health
    check, and on SIGTERM or SIGINT stops them all (each stopping gracefully, as one
    process does), waits for them and returns: exit 0. Workers run uvicorn's own
    server, so each ends by its re-raised SIGTERM (status -15) after its graceful stop;
    only the supervisor sees that status, and it ignores it. A worker that cannot start
    stops the whole service with status 3, as one process does (uvicorn alone would
    return, and the service exit 0)."""
    if settings.rate_limit_storage.startswith("memory://"):
        rate_limit_log.warning(
            "%d worker processes with AUDITQL_RATE_LIMIT_STORAGE=memory://: each process "
            "keeps its own rate-limit counters (a client may get up to %d times its "
            "budget) and its own automatic persisted queries; set it to a redis:// URL "
            "that every process shares",
            workers,
            workers,
        )
    config = _config(
        settings,
        f"{worker_app.__module__}:{worker_app.__qualname__}",
        host,
        port,
        factory=True,
        workers=workers,
    )
    supervisor = _Supervisor(config, sockets=[config.bind_socket()])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise SystemExit(STARTUP_FAILURE)


def _config(
    settings: Settings, app: Starlette | str, host: str, port: int, **more: Any
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,  # our handlers (gql.cli.logs), uvicorn's loggers included
        proxy_headers=settings.trust_proxy_headers,
        forwarded_allow_ips=settings.trusted_proxies,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        # Longer than a load balancer's idle timeout (60 s on many), so the server never
        # closes a connection the balancer is about to reuse (which clients see as 502s).
        timeout_keep_alive=settings.keep_alive_seconds,
        # Subscriptions (gql.live): larger messages are refused with 1009; a peer that
        # stops answering pings is dropped.
        ws="websockets-sansio" if settings.live_updates else "none",
        ws_max_size=settings.ws_max_message_bytes,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        **more,
    )
