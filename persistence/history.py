"""What a pending flush changes on an object, read without loading anything."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm.attributes import History, get_history
from sqlalchemy.orm.base import PassiveFlag


def history(obj: object, key: str) -> History:
    # Never load an unloaded attribute just to compare it: that would be a query.
    return get_history(obj, key, passive=PassiveFlag.PASSIVE_NO_INITIALIZE)


def added_values(obj: object) -> dict[str, Any]:
    """The column values the next flush of ``obj`` writes, by column key."""
    columns = inspect(obj).mapper.local_table.columns
    return {c.key: getattr(obj, c.key) for c in columns if history(obj, c.key).added}
