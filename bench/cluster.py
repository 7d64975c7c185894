"""A throwaway PostgreSQL cluster for one run, with statement statistics, migrated.

The cluster itself is the tests' (``tests/support/postgres.py``: as root it runs as
``nobody``, durability off). The benchmark adds ``pg_stat_statements``, which counts
what every client sends, so the SQL statements per request are counted the same way
for the service and the reference.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import create_async_engine

from persistence import migrations
from tests.support.postgres import PostgresCluster, find_bindir

DATABASE = "bench"


@contextlib.asynccontextmanager
async def throwaway_cluster(*, core: int | None = None) -> AsyncIterator[PostgresCluster]:
    """A started cluster with an empty, migrated database :data:`DATABASE`; with
    ``core``, every process of it runs on that core only (see :func:`pin`)."""
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL's server binaries are missing: apt-get install postgresql-15")
    cluster = PostgresCluster(bindir).init()
    try:
        # A preloaded library is loaded at start only, so it goes in the configuration
        # file before the first start. Appending keeps the file's owner (``nobody``).
        # Ref: https://www.postgresql.org/docs/15/pgstatstatements.html
        with (cluster.datadir / "postgresql.conf").open("a") as conf:
            conf.write("shared_preload_libraries = 'pg_stat_statements'\n")
        cluster.start()
        if core is not None:
            pin(cluster, core)
        cluster.psql("CREATE EXTENSION pg_stat_statements")
        cluster.psql(f"CREATE DATABASE {DATABASE}")
        engine = create_async_engine(cluster.url(DATABASE))
        try:
            await migrations.run(engine, "upgrade", "head")
        finally:
            await engine.dispose()
        yield cluster
    finally:
        cluster.destroy()


def dsn(cluster: PostgresCluster, database: str = DATABASE) -> str:
    """The plain ``postgresql://`` URL asyncpg takes (no SQLAlchemy driver suffix)."""
    return cluster.url(database).replace("postgresql+asyncpg://", "postgresql://", 1)


def pin(cluster: PostgresCluster, core: int) -> None:
    """Run the cluster's processes on ``core`` only: the postmaster and the processes it
    has started; backends it forks later inherit its affinity. Unpinned, PostgreSQL's
    backends run wherever the scheduler wakes them, often on the core of the server
    that woke them, and the server under test loses part of its core to them."""
    postmaster = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(
        ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in (postmaster, *map(int, children)):
        os.sched_setaffinity(pid, {core})
