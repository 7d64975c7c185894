"""``python -m bench --live [--small]``: how fast subscriptions deliver, with and without
1,000 idle subscribers on the process, and the memory those subscribers cost.

The main run's cluster and data (``bench/cluster.py``, ``bench/seed.py``) and one
service process as the main run starts it (``auditql serve``, production settings,
rate limits off), pinned to one core; this process, pinned to the other, is every client:

- *idle subscribers*: WebSocket connections (graphql-transport-ws), each signed in with
  a token of its own (the seeded users', in turn) and running one subscription on a
  post of its own that nothing writes to: ``commentAdded`` on half, ``nodeChanged`` on
  the other half;
- the *watcher*: one more connection, ``commentAdded`` on the watched post;
- the *writer*: ``createComment`` on the watched post over HTTP, at a steady rate, one
  request at a time.

A comment's latency runs from its commit (``audit_chain.committed_at``, PostgreSQL's
commit timestamp: same machine, same clock) to its event's arrival at the watcher, and
also from the mutation's response (the commit happened just before it) to that arrival.
Every event must arrive exactly once, or the run fails. The server's own figure, commit
to send, is the ``auditql_live_delivery_lag_seconds`` histogram of ``/metrics``.

In order: a warm-up; then rounds, each of the writes with no idle subscriber, the idle
subscribers connecting (the first time, the process's RSS before and after: what they
cost), the same writes again, and the idle subscribers leaving. The audit sequencer
runs at its default interval: an entry is sent only once a pass has given it a
position, so the wait for the next pass is most of the latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import select

from bench import cluster, load, measure
from bench.live_report import LAG, LiveResults, Memory, Plan, Setup
from bench.profile import Profile
from bench.progress import elapsed, note
from bench.seed import seed
from bench.servers import in_process, running, service
from bench.subscribers import (
    COMMENT_ADDED,
    Idle,
    LiveError,
    Watcher,
    Write,
    scrape,
    signed_in,
    subscribe,
    until_subscribed,
    write_comments,
)
from domain import tokens
from gql.cli.database import opened
from gql.schema.ids import to_global_id
from gql.settings import Settings
from persistence.audit import AuditContext
from persistence.integrity import sequencer_of
from persistence.models import User
from persistence.unit_of_work import UnitOfWork

LogProblems = Callable[[Path], Counter[str]]


FULL = Plan(idle=1_000, rate=20, writes=300, warmup=60, rounds=2, rest_seconds=10)
SMALL = Plan(idle=20, rate=10, writes=3, warmup=1, rounds=1, rest_seconds=1)


@dataclass
class Clients:
    """What one run talks to, and how."""

    http: httpx.AsyncClient
    base: str
    watcher: Watcher
    watched: str
    data: asyncpg.Connection
    pid: int
    plan: Plan
    all_writes: list[Write] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return _ws_url(self.base)

    async def writes(self, count: int, label: str) -> list[Write]:
        url, rate = f"{self.base}/graphql", self.plan.rate
        written = await write_comments(self.http, url, self.watched, count, rate, label)
        await self.watcher.until([w.comment_id for w in written])
        self.all_writes += written
        return written

    async def setup(self, idle: int) -> Setup:
        plan, pid = self.plan, self.pid
        rest = measure.sample(pid).cpu_seconds
        await asyncio.sleep(plan.rest_seconds)
        note(f"{plan.writes} writes at {plan.rate:g}/s with {idle:,} idle subscribers")
        before, cpu = await scrape(self.http, self.base), measure.sample(pid).cpu_seconds
        rest, started = cpu - rest, time.monotonic()
        written = await self.writes(plan.writes, f"idle-{idle}")
        seconds = time.monotonic() - started
        cpu = measure.sample(pid).cpu_seconds - cpu
        after = await scrape(self.http, self.base)
        lag = {name: after.get(name, 0) - before.get(name, 0) for name in after if LAG in name}
        arrivals = [self.watcher.arrivals[w.comment_id][0] for w in written]
        rows = await self.data.fetch(
            "SELECT position, committed_at FROM audit_chain WHERE position = ANY($1::bigint[])",
            [a.position for a in arrivals],
        )
        committed: dict[int, datetime] = {row["position"]: row["committed_at"] for row in rows}
        dropped = "auditql_live_events_dropped_total"
        return Setup(
            idle=idle, writes=len(written),
            commit_ms=[(a.at - committed[a.position].timestamp()) * 1000 for a in arrivals],
            response_ms=[(a.at - w.answered) * 1000
                         for a, w in zip(arrivals, written, strict=True)],
            request_ms=[(w.answered - w.sent) * 1000 for w in written],
            lag_seconds=lag[f"{LAG}_sum"], lag_count=int(lag[f"{LAG}_count"]),
            lag_within_100ms=int(lag[f"{LAG}_bucket{{le=0.1}}"]),
            dropped=int(after[dropped] - before[dropped]), cpu_seconds=cpu, seconds=seconds,
            rest_cpu_seconds=rest, rest_seconds=plan.rest_seconds,
            rss_mb=measure.sample(pid).rss_mb,
        )  # fmt: skip

    def check_once(self) -> None:
        """Every comment written arrived once, and nothing else did."""
        written = {w.comment_id for w in self.all_writes}
        twice = {c: len(a) for c, a in self.watcher.arrivals.items() if len(a) != 1}
        unasked = set(self.watcher.arrivals) - written
        if twice or unasked or self.watcher.other:
            raise LiveError(f"arrived more than once: {twice}; never written: {unasked}; "
                            f"other messages: {self.watcher.other}")  # fmt: skip


def _ws_url(base: str) -> str:
    return base.replace("http://", "ws://", 1) + "/graphql"


async def _rss(pid: int) -> float:
    """The server's RSS once it is quiet (its last work done, its memory settled)."""
    await asyncio.to_thread(measure.wait_idle, pid)
    return measure.sample(pid).rss_mb


async def _measure(
    clients: Clients, secrets: Sequence[str], idle_posts: Sequence[str]
) -> tuple[list[Setup], Memory, float]:
    """The setups' rounds, in the order they ran; the idle subscribers' memory (their
    first connecting); how long that connecting took."""
    plan, pid, watcher = clients.plan, clients.pid, clients.watcher
    http, base = clients.http, clients.base
    start_mb = await _rss(pid)
    await subscribe(watcher.connection, COMMENT_ADDED, clients.watched)
    await until_subscribed(http, base, 1)
    note(f"warming up: {plan.warmup} writes")
    await clients.writes(plan.warmup, "warmup")
    setups: list[Setup] = []
    connecting: list[float] = []
    rss: list[float] = []
    for number in range(plan.rounds):
        note(f"round {number + 1} of {plan.rounds}")
        setups.append(await clients.setup(0))
        rss.append(await _rss(pid))
        note(f"connecting {plan.idle:,} idle subscribers")
        idle, started = Idle(), time.monotonic()
        try:
            await idle.open(clients.ws_url, secrets, idle_posts)
            await until_subscribed(http, base, plan.idle + 1)
            connecting.append(time.monotonic() - started)
            rss.append(await _rss(pid))
            setups.append(await clients.setup(plan.idle))
            await asyncio.sleep(1)  # a duplicate would come within the sequencer's next passes
            if idle.received:
                raise LiveError(f"idle subscribers received {len(idle.received)} messages, "
                                f"the first: {idle.received[:3]}")  # fmt: skip
        finally:
            await idle.close()
        await until_subscribed(http, base, 1)
    clients.check_once()
    memory = Memory(start_mb, rss[0], rss[1], await _rss(pid), plan.idle)
    return setups, memory, connecting[0]


async def _issue_tokens(settings: Settings, count: int) -> list[str]:
    """A token each for ``count`` subscribers, of the seeded users in turn."""
    async with opened(settings) as database:
        async with database.reader() as session:
            users = list(await session.scalars(select(User).order_by(User.id).limit(count)))
        secrets = []
        for n in range(count):
            user = users[n % len(users)]
            async with UnitOfWork(database, AuditContext(actor_id=user.id)) as uow:
                secret, _ = await tokens.issue_token(uow, user, f"live {n}", None)
            secrets.append(secret)
        # Positions before the server starts, as bench/seed.py gives the seeded entries.
        async with sequencer_of(settings) as sequencer:
            await sequencer.sequence()
    return secrets


async def _post_ids(data: asyncpg.Connection, count: int) -> list[str]:
    """Global ids of ``count`` published posts, every subscriber may see them."""
    rows = await data.fetch(
        "SELECT id FROM posts WHERE status = 'published' AND deleted_at IS NULL"
        " ORDER BY id LIMIT $1", count,
    )  # fmt: skip
    if len(rows) < count:
        raise LiveError(f"the data set has {len(rows)} published posts, {count} needed")
    return [to_global_id("Post", row["id"]) for row in rows]


def _enough_files(needed: int) -> None:
    """This process's open-file limit (and the server's: it inherits it) up to
    ``needed``, as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(f"the open-file limit is {hard}; {needed} are needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@contextlib.contextmanager
def _pinned(core: int) -> Iterator[None]:
    """This process on ``core`` (its threads made after, too), as wrk on the load core."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.asynccontextmanager
async def _clients(base: str, token: str, data: asyncpg.Connection, pid: int, plan: Plan,
                   watched: str) -> AsyncIterator[Clients]:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        watcher = Watcher(await signed_in(_ws_url(base), token))
        reading = asyncio.create_task(watcher.run())
        try:
            yield Clients(http, base, watcher, watched, data, pid, plan)
        finally:
            await watcher.connection.close()
            await reading


async def run(profile: Profile, plan: Plan, command: str, log_problems: LogProblems) -> LiveResults:
    started, load_average = datetime.now(UTC), os.getloadavg()[0]
    server_core, load_core = load.cores()
    _enough_files(2 * plan.idle + 1024)
    with tempfile.TemporaryDirectory(prefix="auditql-live-") as temporary:
        log = Path(temporary) / "service.log"
        note("creating the PostgreSQL cluster")
        async with cluster.throwaway_cluster() as pg:
            database_url = pg.url(cluster.DATABASE)
            note(f"seeding {profile.posts:,} posts")
            seeded = await seed(database_url, cluster.dsn(pg), profile)
            note(f"issuing {plan.idle:,} tokens")
            secrets = await _issue_tokens(in_process(database_url), plan.idle)
            data = await asyncpg.connect(cluster.dsn(pg))
            try:
                watched, *idle_posts = await _post_ids(data, plan.idle + 1)
                setup_seconds = elapsed()
                note("starting the service")
                launch = service(database_url, log, server_core)
                with running(launch) as (endpoint,), _pinned(load_core):
                    base = endpoint.url.removesuffix("/graphql")
                    async with _clients(base, seeded.token, data, endpoint.process.pid, plan,
                                        watched) as clients:  # fmt: skip
                        found = await _measure(clients, secrets, idle_posts)
                        setups, memory, connect_seconds = found
                version = await data.fetchval("SHOW server_version")
            finally:
                await data.close()
        problems = log_problems(log)
    return LiveResults(
        profile=profile, plan=plan, command=command, started=started,
        load_average=load_average, postgres_version=version, counts=seeded.counts,
        cores=(server_core, load_core), setup_seconds=setup_seconds, wall_seconds=elapsed(),
        connect_seconds=connect_seconds, setups=setups, memory=memory, problems=problems,
    )  # fmt: skip
