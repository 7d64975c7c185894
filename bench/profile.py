"""How much data and how long to measure: the full run and the small one CI runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    users: int
    posts: int
    tags: int
    rounds: int
    """Interleaved rounds per scenario and endpoint; each figure is the median over them."""
    seconds: int
    """Length of one round of load."""
    warmup_seconds: int
    """Load before each scenario's rounds, not measured; 0 for none (the checks before
    measuring have already sent each kind of request once)."""
    bulk_rows: int
    bulk_runs: int
    startup_runs: int
    """Start-ups of each server, taking turns, before any load."""
    seed: int = 6


FULL = Profile(
    name="full", users=1_000, posts=20_000, tags=50,
    rounds=5, seconds=10, warmup_seconds=3, bulk_rows=10_000, bulk_runs=3, startup_runs=5,
)  # fmt: skip
SMALL = Profile(
    name="small", users=100, posts=2_000, tags=50,
    rounds=1, seconds=3, warmup_seconds=0, bulk_rows=1_000, bulk_runs=3, startup_runs=1,
)  # fmt: skip
