"""Feature-flag evaluation: deterministic, so a user sees the same answer every time."""

from __future__ import annotations

import hashlib

from persistence.models import FeatureFlag, FlagOverride


def bucket(flag_key: str, user_id: int) -> int:
    """A stable number in 0..99 for (flag, user): SHA-256, not Python's salted hash()."""
    digest = hashlib.sha256(f"{flag_key}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def is_enabled(flag: FeatureFlag, user_id: int | None, override: FlagOverride | None) -> bool:
    """A user's override wins; otherwise an enabled flag is on for the users whose bucket
    falls under the rollout percentage. Anonymous viewers have no bucket: for them a flag
    is on only when it is enabled for 100%."""
    if override is not None:
        return override.enabled
    if not flag.enabled:
        return False
    if user_id is None:
        return flag.rollout_percentage >= 100
    return bucket(flag.key, user_id) < flag.rollout_percentage
