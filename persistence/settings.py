"""Database settings, read from ``AUDITQL_*`` environment variables."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./auditql.db"
MIN_COMMAND_TIMEOUT_S = 5.0
LOCK_BUDGET_MARGIN_S = 0.5
"""What a unit of work may spend in the database beyond ``db_lock_timeout_ms``: its
statements' own time (milliseconds), with room to spare."""


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
        4_000, ge=0, description="PostgreSQL statement_timeout in ms (0 = none)."
    )
    db_lock_timeout_ms: int = Field(
        3_000,
        ge=0,
        description="PostgreSQL lock_timeout in ms (0 = none); a unit of work waits at "
        f"most this plus {LOCK_BUDGET_MARGIN_S} s for the database in all.",
    )
    db_command_timeout: float = Field(
        0,
        ge=0,
        description="Seconds a round trip to PostgreSQL may take before the server is "
        "taken for unreachable; above the statement and lock timeouts (0: "
        f"{MIN_COMMAND_TIMEOUT_S:g} s, or 1 s more than the longer of them).",
    )
    db_echo: bool = Field(
        False, description="Log every SQL statement (development aid; `auditql serve`)."
    )
    database_replica_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="streaming replicas of the PostgreSQL database that reads may use, "
        "comma-separated SQLAlchemy URLs",
    )
    replica_max_lag: float = Field(
        5.0,
        gt=0,
        description="seconds a replica may lag behind the primary and still serve reads "
        "sent without a consistency token",
    )
    replica_wait_ms: int = Field(
        200,
        ge=0,
        description="how long a read with a consistency token waits for a replica to "
        "replay it before reading from the primary",
    )
    db_pgbouncer: bool = Field(
        False,
        description="the URLs point at PgBouncer in transaction pooling mode: no "
        "prepared statements kept, no session settings at connect",
    )

    @field_validator("database_replica_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _client_deadline_last(self) -> Self:
        """A live server must get to cancel a slow statement itself (TIMEOUT) before
        this side gives up on it as unreachable (SERVICE_UNAVAILABLE)."""
        if self.db_command_timeout and self.db_command_timeout <= self._server_bound:
            raise ValueError(
                f"db_command_timeout ({self.db_command_timeout:g} s) must exceed the "
                f"statement and lock timeouts ({self._server_bound:g} s)"
            )
        return self

    @property
    def _server_bound(self) -> float:
        """The longest a live server lets a statement or a unit of work run, in seconds."""
        return max(self.db_statement_timeout_ms / 1000, self.lock_budget or 0)

    @property
    def command_timeout(self) -> float:
        """The client-side deadline of a round trip (see ``db_command_timeout``)."""
        if self.db_command_timeout:
            return self.db_command_timeout
        return max(MIN_COMMAND_TIMEOUT_S, self._server_bound + 1)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def lock_budget(self) -> float | None:
        """Seconds one unit of work may spend in the database, if bounded: see
        :mod:`persistence.deadlines`."""
        if not self.db_lock_timeout_ms:
            return None
        return self.db_lock_timeout_ms / 1000 + LOCK_BUDGET_MARGIN_S
