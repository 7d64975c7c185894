"""The primary-and-replica pair the replica tests stand on (``tests/support/replication.py``).

Like every PostgreSQL test it is skipped without the server binaries, except in CI
(the ``postgres_bindir`` fixture).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.replication import Replication, replicated, wait_for

DATABASE = "replication_test"


@pytest.fixture(scope="module")
def replication(postgres_bindir: Path) -> Iterator[Replication]:
    with replicated(postgres_bindir) as pair:
        pair.create_database(DATABASE)
        pair.primary.psql("CREATE TABLE notes (id integer PRIMARY KEY)", DATABASE)
        yield pair


def _on_replica(replication: Replication, note: int) -> bool:
    found = replication.replica.psql(f"SELECT count(*) FROM notes WHERE id = {note}", DATABASE)
    return found.strip() == "1"


def test_a_row_written_on_the_primary_shows_on_the_replica(replication: Replication) -> None:
    replication.primary.psql("INSERT INTO notes VALUES (1)", DATABASE)
    replication.wait_caught_up()
    assert _on_replica(replication, 1)


def test_an_apply_delay_holds_a_commit_back_for_that_long(replication: Replication) -> None:
    replication.set_apply_delay(2)
    try:
        replication.primary.psql("INSERT INTO notes VALUES (2)", DATABASE)
        committed = time.monotonic()
        assert not _on_replica(replication, 2)
        replication.wait_caught_up(timeout=10)
        waited = time.monotonic() - committed
        assert _on_replica(replication, 2)
        assert 1.5 < waited < 5, waited
    finally:
        replication.set_apply_delay(0)


def test_the_replica_refuses_writes(replication: Replication) -> None:
    with pytest.raises(subprocess.CalledProcessError) as refused:
        replication.replica.psql("INSERT INTO notes VALUES (3)", DATABASE)
    assert "read-only transaction" in refused.value.stderr
    assert replication.replica.psql("SELECT pg_is_in_recovery()").strip() == "t"


def test_a_restarted_replica_catches_up(replication: Replication) -> None:
    replication.replica.stop()
    replication.primary.psql("INSERT INTO notes VALUES (4)", DATABASE)
    replication.replica.start()
    replication.wait_caught_up()
    assert _on_replica(replication, 4)


def test_wait_for_says_how_long_it_took_and_what_never_came() -> None:
    later = time.monotonic() + 0.2
    assert 0.15 < wait_for(lambda: time.monotonic() >= later, "a fifth of a second") < 1
    with pytest.raises(TimeoutError, match="the impossible"):
        wait_for(lambda: False, "the impossible", timeout=0.1)
