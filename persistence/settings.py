"""Database settings, read from ``AUDITQL_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./auditql.db"


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUDITQL_", extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    db_pool_size: int = Field(10, ge=1, description="Connections kept open (PostgreSQL).")
    db_max_overflow: int = Field(10, ge=0, description="Extra connections under load.")
    db_pool_timeout: float = Field(
        5.0, gt=0, description="Seconds to wait for a free pooled connection."
    )
    db_connect_timeout: float = Field(
        3.0, gt=0, description="Seconds to wait for a new database connection."
    )
    db_statement_timeout_ms: int = Field(
        15_000, ge=0, description="PostgreSQL statement_timeout in ms (0 = none)."
    )
    db_lock_timeout_ms: int = Field(
        3_000, ge=0, description="PostgreSQL lock_timeout in ms (0 = none)."
    )
    db_echo: bool = Field(False, description="Log every SQL statement (development aid).")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
