"""Progress on stderr, with the time since the start: a full run takes minutes."""

from __future__ import annotations

import sys
import time

_START = time.monotonic()


def elapsed() -> float:
    return time.monotonic() - _START


def note(message: str) -> None:
    print(f"bench [{elapsed():6.1f} s] {message}", file=sys.stderr, flush=True)
