"""The endpoints under test, each one process pinned to one core.

The service is the real ``auditql serve --no-migrate`` in production mode: JSON logs at
WARNING (so logging is not what gets measured), rate limits off (wrk is one client
asking as fast as it can), and a pool large enough for 32 concurrent requests. The
reference (the limit) and the stock strawberry server run under uvicorn with the same
event loop and HTTP parser.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from gql.settings import Settings
from tests.support.server import AUDITQL, ROOT, free_port, wait_healthy

POOL_SIZE = 32
_START_SECONDS = 60


@dataclass(frozen=True)
class Launch:
    """How to start one endpoint."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    log: Path


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    """The GraphQL URL."""
    process: subprocess.Popen[bytes]
    log: Path


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment without any AUDITQL_ setting of the caller's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUDITQL_")}
    return {**base, **extra}


AUDIT_KEKS = f"bench:{base64.b64encode(os.urandom(32)).decode()}"
AUDIT_SIGNING_KEY = f"ed25519:bench:{base64.b64encode(os.urandom(32)).decode()}"
"""Production needs the keys audit entries seal personal values under, and the key audit
checkpoints are signed with: throwaway ones for the throwaway cluster, the same for
every service of a run (the seeded users get their data keys at their first write, as
users from before sealing do)."""


def in_process(database_url: str) -> Settings:
    """The settings of the benchmark's own writes (seeding, bulk inserts): the service's
    keys, so that each reads what the other sealed."""
    return Settings(
        database_url=database_url,
        audit_keks=SecretStr(AUDIT_KEKS),
        audit_signing_key=SecretStr(AUDIT_SIGNING_KEY),
    )


NO_RATE_LIMITS = {
    # An empty budget disables the limit.
    "AUDITQL_RATE_LIMIT_PER_TOKEN": "",
    "AUDITQL_RATE_LIMIT_PER_ADDRESS": "",
    "AUDITQL_SIGN_IN_FAILURE_LIMIT": "",
}


def service(
    database_url: str, log: Path, core: int, *, settings: dict[str, str] = NO_RATE_LIMITS
) -> Launch:
    """The service; ``settings`` are more AUDITQL_ variables (by default: no rate limits)."""
    port = free_port()
    defaults = {
        "AUDITQL_DATABASE_URL": database_url,
        "AUDITQL_ENVIRONMENT": "production",
        "AUDITQL_AUDIT_KEKS": AUDIT_KEKS,
        "AUDITQL_AUDIT_SIGNING_KEY": AUDIT_SIGNING_KEY,
        "AUDITQL_LOG_FORMAT": "json",
        "AUDITQL_LOG_LEVEL": "WARNING",
        "AUDITQL_PORT": str(port),
        "AUDITQL_DB_POOL_SIZE": str(POOL_SIZE),
        "AUDITQL_DB_MAX_OVERFLOW": str(POOL_SIZE),
    }
    env = _environment(**{**defaults, **settings})
    command = ["taskset", "-c", str(core), AUDITQL, "serve", "--no-migrate"]
    return Launch("service", command, env, port, log)


def _uvicorn(name: str, factory: str, env: dict[str, str], log: Path, core: int) -> Launch:
    """``factory`` (``module:function``) under uvicorn as the service runs: uvloop,
    httptools, one process, no access log."""
    port = free_port()
    command = [
        "taskset", "-c", str(core), sys.executable, "-m", "uvicorn", factory, "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return Launch(name, command, _environment(**env), port, log)


def reference(dsn: str, actor_id: int, log: Path, core: int) -> Launch:
    """The limit: plain Starlette + asyncpg + orjson (``bench/reference.py``)."""
    env = {"BENCH_DSN": dsn, "BENCH_ACTOR_ID": str(actor_id), "BENCH_POOL_SIZE": str(POOL_SIZE)}
    return _uvicorn("reference", "bench.reference:create_app", env, log, core)


def stock(database_url: str, log: Path, core: int) -> Launch:
    """Stock strawberry + SQLAlchemy + aiodataloader (``bench/stock.py``)."""
    env = {"BENCH_DATABASE_URL": database_url, "BENCH_POOL_SIZE": str(POOL_SIZE)}
    return _uvicorn("stock", "bench.stock:create_app", env, log, core)


@contextlib.contextmanager
def running(*launches: Launch) -> Iterator[tuple[Endpoint, ...]]:
    """Start them all at once; yield once each answers ``/health``; stop them after."""
    endpoints: list[Endpoint] = []
    try:
        for launch in launches:
            with launch.log.open("w") as output:
                process = subprocess.Popen(launch.command, env=launch.env, cwd=ROOT,
                                           stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
            url = f"http://127.0.0.1:{launch.port}/graphql"
            endpoints.append(Endpoint(launch.name, url, process, launch.log))
        deadline = time.monotonic() + _START_SECONDS
        for endpoint, launch in zip(endpoints, launches, strict=True):
            base = f"http://127.0.0.1:{launch.port}"
            wait_healthy(endpoint.name, endpoint.process, base, endpoint.log, deadline=deadline)
        yield tuple(endpoints)
    finally:
        for endpoint in endpoints:
            if endpoint.process.poll() is None:
                endpoint.process.terminate()
        for endpoint in endpoints:
            endpoint.process.wait(timeout=30)
