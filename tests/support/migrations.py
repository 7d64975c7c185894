"""Running the project's Alembic migrations from tests, on an open connection."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config(ROOT / "alembic.ini")
    config.attributes["connection"] = connection
    return config


async def run(engine: AsyncEngine, name: str, *args: str) -> None:
    """``alembic <name> <args>`` against ``engine``, e.g. ``run(engine, "upgrade", "head")``."""

    def _run(connection: Connection) -> None:
        getattr(command, name)(alembic_config(connection), *args)

    async with engine.begin() as connection:
        await connection.run_sync(_run)
