"""Posts: the limits of their content."""

from __future__ import annotations

MAX_BODY = 100_000
MAX_TAGS = 20
