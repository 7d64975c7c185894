"""A database that is not at the migration head the code expects is not ready: /ready
answers 503 and the server says why in one log line, at start-up and whenever that
changes; once migrated, /ready answers 200 without a restart. Through a real server on
PostgreSQL started with --no-migrate, as in production."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from persistence import migrations
from tests.conftest import backend_url
from tests.gql.conftest import NO_RATE_LIMITS
from tests.support.postgres import PostgresCluster
from tests.support.server import AUDITQL, serving


def ready_lines(log: Path) -> list[dict[str, str]]:
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return [line for line in lines if line["logger"] == "auditql.ready"]


def test_an_unmigrated_database_is_not_ready_until_it_is_migrated(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = backend_url(request, "postgresql", f"unmigrated_{tmp_path.name}")
    env = {"AUDITQL_DATABASE_URL": url, "AUDITQL_ENVIRONMENT": "production",
           "AUDITQL_LOG_FORMAT": "json", **NO_RATE_LIMITS}  # fmt: skip
    log = tmp_path / "server.log"
    with serving(env, log, "--no-migrate") as server, httpx.Client(base_url=server.base) as http:
        before = [http.get("/ready") for _ in range(3)]
        health = http.get("/health")
        migrated = subprocess.run([AUDITQL, "migrate"], env={**os.environ, **env},
                                  capture_output=True, text=True, timeout=120)  # fmt: skip
        after = http.get("/ready")
        served = http.post("/graphql", json={"query": "{ posts { totalCount } }"})

    assert [response.status_code for response in before] == [503, 503, 503]
    assert health.status_code == 200
    assert migrated.returncode == 0, migrated.stderr
    assert after.status_code == 200
    assert served.json() == {"data": {"posts": {"totalCount": 0}}}
    said = [(line["level"], line["message"]) for line in ready_lines(log)]
    assert said == [
        ("WARNING", "not ready: the database was never migrated, the code expects "
                    f"{migrations.head()}: run `auditql migrate`"),
        ("INFO", f"ready: the database answers and is at {migrations.head()}"),
    ]  # fmt: skip


def test_a_database_at_another_revision_is_not_ready(
    request: pytest.FixtureRequest, postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    name = f"stale_{tmp_path.name}"
    url = backend_url(request, "postgresql", name)
    env = {"AUDITQL_DATABASE_URL": url, "AUDITQL_LOG_FORMAT": "json", **NO_RATE_LIMITS}
    subprocess.run([AUDITQL, "migrate"], env={**os.environ, **env}, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    postgres_cluster.psql("UPDATE alembic_version SET version_num = '0123456789ab'", name)
    log = tmp_path / "server.log"
    with serving(env, log, "--no-migrate") as server, httpx.Client(base_url=server.base) as http:
        response = http.get("/ready")
    assert response.status_code == 503
    [said] = ready_lines(log)
    assert said["message"] == (
        "not ready: the database is at revision 0123456789ab, the code expects "
        f"{migrations.head()}: run `auditql migrate`"
    )
