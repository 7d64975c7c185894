"""Whether this process should be sent traffic: its database answers, and is at the
migration head the code expects (a database nobody migrated answers every query with
an error). The reason it is not is logged once, when it changes, not at every probe."""

from __future__ import annotations

import asyncio
import logging

from persistence import migrations
from persistence.engine import Database

logger = logging.getLogger("auditql.ready")


class Readiness:
    def __init__(self, database: Database, timeout: float) -> None:
        self._database = database
        self._timeout = timeout
        self._said: str | None = None

    async def check(self) -> str | None:
        """Why the process is not ready, or None when it is."""
        try:
            async with asyncio.timeout(self._timeout):
                reason = await migrations.behind(self._database.engine)
        except Exception as exc:  # any failure to answer means: not ready
            reason = f"the database does not answer ({type(exc).__name__})"
        if reason != self._said:
            if reason is None:
                logger.info("ready: the database answers and is at %s", migrations.head())
            else:
                logger.warning("not ready: %s", reason)
            self._said = reason
        return reason
