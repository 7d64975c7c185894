"""A throwaway primary with one streaming replica (a hot standby), from the local binaries.

Both are :class:`~tests.support.postgres.PostgresCluster` s, so they trade durability for
speed alike and, as root, run as the unprivileged user. The replica is cloned from the
running primary with ``pg_basebackup -R``, which copies the primary's configuration and
writes ``standby.signal`` and ``primary_conninfo``: started, it streams and serves reads.
Ref: https://www.postgresql.org/docs/15/warm-standby.html#STREAMING-REPLICATION
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.postgres import PostgresCluster

_PRIMARY_SETTINGS = (
    # The defaults since PostgreSQL 10, spelt out so that the clone does not depend on them.
    "wal_level = replica",
    "max_wal_senders = 4",
    "hot_standby = on",
    # With synchronous_commit off a commit's WAL reaches the replica once the WAL writer
    # flushes it, every wal_writer_delay (200 ms by default): keep replication lag short.
    "wal_writer_delay = 10ms",
)
_POLL_SECONDS = 0.02


class Replica(PostgresCluster):
    """A hot standby of another cluster: :meth:`clone` it instead of ``init``."""

    def clone(self, primary: PostgresCluster) -> Replica:
        """Copy the running ``primary`` with ``pg_basebackup -R`` (a fast checkpoint, WAL
        streamed alongside, nothing fsynced)."""
        self._run(
            str(self.bindir / "pg_basebackup"), "-D", str(self.datadir),
            "-d", f"host=127.0.0.1 port={primary.port} user=postgres",
            "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        return self


@dataclass(frozen=True)
class Replication:
    primary: PostgresCluster
    replica: Replica

    def set_apply_delay(self, seconds: float) -> None:
        """Have the replica apply each commit ``seconds`` after the primary made it (0:
        as soon as it arrives). Returns once a new session on the replica sees the value.
        Ref: https://www.postgresql.org/docs/15/runtime-config-replication.html#GUC-RECOVERY-MIN-APPLY-DELAY
        """
        milliseconds = round(seconds * 1000)
        self.replica.psql(f"ALTER SYSTEM SET recovery_min_apply_delay = '{milliseconds}ms'")
        self.replica.psql("SELECT pg_reload_conf()")
        shown = "SELECT current_setting('recovery_min_apply_delay')"
        expected = "0" if milliseconds == 0 else f"{milliseconds}ms"
        wait_for(
            lambda: _normalised_ms(self.replica.psql(shown).strip()) == _normalised_ms(expected),
            f"the replica takes recovery_min_apply_delay = {expected}",
            timeout=5,
        )

    def wait_caught_up(self, timeout: float = 10) -> None:
        """Return once the replica has replayed everything the primary had written when
        this was called (with an apply delay set, that takes the delay)."""
        target = self.primary.psql("SELECT pg_current_wal_lsn()").strip()
        replayed = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        wait_for(
            lambda: self.replica.psql(replayed).strip() == "t",
            f"the replica replays up to {target}",
            timeout=timeout,
        )

    def create_database(self, name: str, timeout: float = 10) -> None:
        """``CREATE DATABASE`` on the primary; returns once the replica has it too."""
        self.primary.psql(f'CREATE DATABASE "{name}"')
        self.wait_caught_up(timeout)


def _normalised_ms(value: str) -> int:
    """PostgreSQL shows a duration in its largest exact unit: ``2s``, ``1500ms``, ``0``."""
    for unit, factor in (("ms", 1), ("s", 1000), ("min", 60_000), ("h", 3_600_000)):
        if value.endswith(unit) and value.removesuffix(unit).isdigit():
            return int(value.removesuffix(unit)) * factor
    return int(value)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 15) -> float:
    """Seconds until ``condition()`` held (polled); TimeoutError naming ``what`` after
    ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not within {timeout:g} s: {what}")
        time.sleep(_POLL_SECONDS)
    return time.monotonic() - started


def replica_state(base: str) -> dict[str, Any]:
    """The one replica's state as the API process at ``base`` (``http://host:port``)
    reports it on ``/ready``: ``replica`` (its name), ``state``, ``inRotation``,
    ``lagSeconds``."""
    [state] = httpx.get(f"{base}/ready", timeout=10).json()["replicas"]
    return dict(state)


def _configure_primary(primary: PostgresCluster) -> None:
    # Appending keeps the files' owner (the unprivileged user, as root). The replica
    # copies both files; only a primary reads them for replication.
    with (primary.datadir / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{setting}\n" for setting in _PRIMARY_SETTINGS)
    with (primary.datadir / "pg_hba.conf").open("a") as hba:
        # initdb's template (with -A trust) already admits it; spelt out because the
        # clone depends on it.
        hba.write("host replication postgres 127.0.0.1/32 trust\n")


@contextlib.contextmanager
def streaming_replica(primary: PostgresCluster) -> Iterator[Replication]:
    """A replica of the running ``primary``, started and streaming; destroyed after.

    The primary must admit a replication connection from ``postgres`` on 127.0.0.1,
    as PostgreSQL's defaults (since 10) and initdb's ``-A trust`` template do."""
    replica = Replica(primary.bindir)
    try:
        replica.clone(primary).start()
        wait_for(
            lambda: primary.psql("SELECT count(*) FROM pg_stat_replication").strip() == "1",
            "the replica streams from the primary",
            timeout=10,
        )
        yield Replication(primary, replica)
    finally:
        replica.destroy()


@contextlib.contextmanager
def replicated(bindir: Path) -> Iterator[Replication]:
    """A started primary configured for replication and a started replica streaming
    from it; both destroyed after."""
    primary = PostgresCluster(bindir).init()
    try:
        _configure_primary(primary)
        primary.start()
        with streaming_replica(primary) as replication:
            yield replication
    finally:
        primary.destroy()
