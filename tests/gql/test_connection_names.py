"""A served process's connections, told apart in ``pg_stat_activity`` by their
``application_name``: the requests' pools are ``auditql``, the audit sequencer is
``auditql-sequencer``, live updates are ``auditql-live``.

An operator (or a test) watching the requests' connections must not mistake background
work for them: the sequencer is inside a transaction for part of every pass, and live
updates hold a connection open for as long as the server runs.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.gql.conftest import LiveServer
from tests.support.postgres import PostgresCluster
from tests.support.replication import wait_for

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

NAMES = """
SELECT application_name, count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
GROUP BY application_name ORDER BY application_name
"""


def test_background_work_has_connections_of_its_own_names(
    live_server: LiveServer, database_url: str, postgres_cluster: PostgresCluster
) -> None:
    database = str(make_url(database_url).database)

    def names() -> dict[str, int]:
        rows = postgres_cluster.psql(NAMES, database).splitlines()
        return {name: int(count) for name, count in (row.split("|") for row in rows)}

    with live_server() as server:
        ready = httpx.get(f"{server.base}/ready")  # a request's read: a pooled connection
        assert ready.status_code == 200, ready.text
        # The sequencer passes every 50 ms on one connection; live updates LISTEN on one
        # and read the trail on another.
        background = {"auditql-sequencer": 1, "auditql-live": 2}
        wait_for(lambda: background.items() <= names().items(),
                 f"{background} in pg_stat_activity")  # fmt: skip
        seen = names()

    assert set(seen) == {"auditql", *background}, seen
