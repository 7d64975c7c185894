"""Interleaved rounds: service, reference, stock, service, reference, ..., so that
whatever else the machine does drifts over all alike; and the statement probe."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import load, measure
from bench.measure import StatementCounter
from bench.profile import Profile
from bench.progress import note
from bench.servers import Endpoint

BodyFor = Callable[[str], Path]
"""The body file for a run, by a label unique to that run (unique titles per run)."""


@dataclass(frozen=True)
class Round:
    label: str
    """Unique to the round: the ``body_for`` label."""
    load: load.Load
    connections: int
    cpu_seconds: float
    """The server's CPU time from the start of the round until it was idle again."""
    rss_mb: float
    """The server's resident memory after the round."""

    @property
    def cpu_ms_per_request(self) -> float:
        """CPU time over the requests the server handled: those wrk saw answered, and
        the one each connection still had in flight when wrk stopped, which the server
        goes on with while :data:`cpu_seconds` is still being counted. (A request it
        had not begun to read is dropped instead, so with many connections and few
        answers this understates the figure a little.)"""
        return self.cpu_seconds * 1000 / (self.load.requests + self.connections)


@dataclass(frozen=True)
class Scenario:
    """One request at one concurrency, measured on some of the endpoints."""

    name: str
    connections: int
    rounds: dict[str, list[Round]]
    """By endpoint name."""

    @property
    def title(self) -> str:
        return f"{self.name}, c={self.connections}"


def median(rounds: Sequence[Round], figure: Callable[[Round], float]) -> float:
    return statistics.median(figure(r) for r in rounds)


def interleaved(
    wrk: str,
    endpoints: Sequence[Endpoint],
    body_for: BodyFor,
    *,
    scenario: str,
    connections: int,
    profile: Profile,
    core: int,
    authorization: str = "",
) -> dict[str, list[Round]]:
    """A warm-up run of each endpoint (unless the profile has none), then
    ``profile.rounds`` measured rounds of each."""

    def run(endpoint: Endpoint, label: str, seconds: int) -> load.Load:
        result = load.run(
            wrk,
            endpoint.url,
            body_for(label),
            connections=connections,
            seconds=seconds,
            core=core,
            authorization=authorization,
        )
        measure.wait_idle(endpoint.process.pid)
        return result

    if profile.warmup_seconds:
        note(f"{scenario}, c={connections}: warming up")
        for endpoint in endpoints:
            run(endpoint, f"{scenario}-{endpoint.name}-warmup", profile.warmup_seconds)
    rounds: dict[str, list[Round]] = {endpoint.name: [] for endpoint in endpoints}
    for number in range(profile.rounds):
        note(f"{scenario}, c={connections}: round {number + 1} of {profile.rounds}")
        for endpoint in endpoints:
            label = f"{scenario}-{endpoint.name}-r{number}"
            before = measure.sample(endpoint.process.pid)
            result = run(endpoint, label, profile.seconds)
            after = measure.sample(endpoint.process.pid)
            cpu = after.cpu_seconds - before.cpu_seconds
            rounds[endpoint.name].append(Round(label, result, connections, cpu, after.rss_mb))
    return rounds


@dataclass(frozen=True)
class Statements:
    requests: int
    counts: Counter[str]
    """Executions per normalised statement text."""

    @property
    def per_request(self) -> float:
        return sum(self.counts.values()) / self.requests


async def probe(
    counter: StatementCounter, endpoint: Endpoint, bodies: Sequence[bytes], authorization: str = ""
) -> Statements:
    """The statements ``bodies``, sent one at a time, cost; each must answer 200."""
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    async with httpx.AsyncClient(timeout=30) as client:
        await counter.reset()
        for body in bodies:
            response = await client.post(endpoint.url, content=body, headers=headers)
            response.raise_for_status()
        return Statements(len(bodies), await counter.counts())
