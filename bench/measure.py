"""What a server costs: CPU time and memory from /proc, statements from PostgreSQL."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.support.statements import ServerStatements

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessSample:
    cpu_seconds: float
    """User plus system time of all its threads so far."""
    rss_mb: float
    peak_rss_mb: float
    """The high-water mark of its resident memory (VmHWM)."""


def sample(pid: int) -> ProcessSample:
    # Fields 14 and 15 of /proc/<pid>/stat are utime and stime, in clock ticks; the
    # command name (field 2) may contain spaces, so count from the closing parenthesis.
    # Ref: https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return ProcessSample(cpu, _megabytes(status["VmRSS"]), _megabytes(status["VmHWM"]))


def wait_idle(pid: int, *, window: float = 0.1, timeout: float = 300) -> None:
    """Return once the process has used at most one clock tick of CPU in each of two
    ``window``-long spans in a row (one quiet span may just be a wait on the database).
    When wrk stops, each of its connections has a request in flight, which the server
    still finishes: the next run must not share the core with that work."""
    deadline = time.monotonic() + timeout
    last, quiet = sample(pid).cpu_seconds, 0
    while quiet < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} is still busy {timeout} s after the load stopped")
        time.sleep(window)
        now = sample(pid).cpu_seconds
        quiet = quiet + 1 if now - last <= 1.5 / _TICKS else 0
        last = now


def _megabytes(value: str) -> float:
    amount, unit = value.split()
    if unit != "kB":
        raise ValueError(f"unexpected unit in /proc/<pid>/status: {value!r}")
    return int(amount) / 1024


class StatementCounter(ServerStatements):
    """Statements run in one database (:class:`tests.support.statements.ServerStatements`);
    it does not see a connection-pool ping with an empty query (``;``), which is a round
    trip but no statement."""

    async def counts(self) -> Counter[str]:
        """The statements counted since :meth:`reset`, but the audit sequencer's and the
        live updates' listener's: they run in the service's background (every 50 ms and
        every second, whoever is measured), and their cost shows in the service's CPU
        and throughput, not per request."""
        return _without_the_background(await self.counted())


# A pass is BEGIN ISOLATION LEVEL REPEATABLE READ, this statement, its reads and writes of
# the chain, and COMMIT (persistence.chain.Sequencer).
_PASS = "pg_try_advisory_xact_lock"
_SEQUENCER_ONLY = (
    _PASS, "REPEATABLE READ", "pg_xact_commit_timestamp", "audit_chain", "audit_checkpoint",
    "audit_trail", "pg_notify",
)  # fmt: skip


# The live updates' listener reads the trail after its head (persistence.feed.events_after)
# in a transaction of its own: BEGIN, this read, ROLLBACK; and checks its LISTEN
# connection with a bare SELECT 1 (gql/live/listener.py), which no endpoint sends.
_FEED_READ = "SELECT audit_chain.position, audit_chain.committed_at"
_HEARTBEAT = "SELECT 1"


def _without_the_background(counts: Counter[str]) -> Counter[str]:
    passes = sum(calls for query, calls in counts.items() if _PASS in query)
    feeds = sum(calls for query, calls in counts.items() if query.startswith(_FEED_READ))
    own = Counter(
        {
            q: c
            for q, c in counts.items()
            if q != _HEARTBEAT and not any(mark in q for mark in _SEQUENCER_ONLY)
        }
    )
    own.subtract({"COMMIT": passes, "BEGIN": feeds, "ROLLBACK": feeds})
    return +own  # drops what is left at zero
