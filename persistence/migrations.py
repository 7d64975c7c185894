"""Running the Alembic migrations from Python (the CLI, the tests, the release step)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


def config(connection: Connection | None = None) -> Config:
    """The project's Alembic configuration, optionally bound to an open connection."""
    # stdout now, not the one alembic captured at import (CLI output can be redirected).
    alembic_config = Config(ALEMBIC_INI, stdout=sys.stdout)
    alembic_config.attributes["connection"] = connection
    return alembic_config


async def run(
    engine: AsyncEngine, name: str, *args: str, progress: bool = False, **kwargs: Any
) -> None:
    """``alembic <name> <args>`` against ``engine``, e.g. ``run(engine, "upgrade", "head")``.

    With ``progress``, each migration step is reported on stderr as it runs."""

    def _run(connection: Connection) -> None:
        getattr(command, name)(config(connection), *args, **kwargs)

    with _reporting(progress):
        async with engine.begin() as connection:
            await connection.run_sync(_run)


@contextlib.contextmanager
def _reporting(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    logger = logging.getLogger("alembic.runtime.migration")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
