"""Running the Alembic migrations from Python (the CLI, the tests, the release step)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


def config(connection: Connection | None = None) -> Config:
    """The project's Alembic configuration, optionally bound to an open connection."""
    alembic_config = Config(ALEMBIC_INI)
    alembic_config.attributes["connection"] = connection
    return alembic_config


async def run(engine: AsyncEngine, name: str, *args: str) -> None:
    """``alembic <name> <args>`` against ``engine``, e.g. ``run(engine, "upgrade", "head")``."""

    def _run(connection: Connection) -> None:
        getattr(command, name)(config(connection), *args)

    async with engine.begin() as connection:
        await connection.run_sync(_run)
