"""Database settings, read from ``AUDITQL_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from persistence.checkpoints import parse_key
from persistence.keyring import KeyRing

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
    database_listen_url: str | None = Field(
        None,
        description="the primary itself, for live updates' LISTEN connection, when "
        "AUDITQL_DATABASE_URL points at a transaction-pooling PgBouncer (default: "
        "AUDITQL_DATABASE_URL, or polling behind PgBouncer)",
    )
    db_pgbouncer: bool = Field(
        False,
        description="the URLs point at PgBouncer in transaction pooling mode: no "
        "prepared statements kept, no session settings at connect",
    )

    audit_keks: SecretStr = Field(
        SecretStr(""),
        description="keys that wrap the per-user keys personal audit values are sealed "
        "under, comma-separated id:base64 of 32 bytes (e.g. k1:...); the first wraps, all "
        "unwrap; required in production",
    )
    audit_key_file: Path | None = Field(
        None,
        description="without AUDITQL_AUDIT_KEKS: the file the generated keys are kept in "
        "(development's default: beside the SQLite database, <name>.keys.json; production "
        "uses one only when it is set)",
    )
    audit_signing_key: SecretStr = Field(
        SecretStr(""),
        description="the key checkpoints of the audit chain are signed with: "
        "ed25519:<key id>:<base64 32-byte seed> or hmac-sha256:<key id>:<base64 32 bytes>; "
        "required in production (development keeps one in the key file)",
    )
    audit_verify_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="retired keys that older checkpoints were signed with, comma-separated, "
        "in the signing key's form (an Ed25519 key may be its 32-byte public key)",
    )
    audit_sequencer: bool = Field(
        True,
        description="run the audit sequencer (positions and checkpoints) in this process; "
        "off where another process runs it (auditql audit sequencer)",
    )
    audit_sequence_interval_ms: int = Field(
        50, ge=5, le=10_000, description="how often the sequencer gives new entries positions"
    )
    audit_checkpoint_every: int = Field(
        10_000, ge=1, description="entries between two signed checkpoints, at most"
    )
    audit_checkpoint_interval_s: float = Field(
        60.0, gt=0, description="seconds between two signed checkpoints, at most"
    )

    @field_validator("audit_keks")
    @classmethod
    def _key_ring(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value().strip():
            KeyRing.parse(value.get_secret_value())  # a ValueError saying what is wrong
        return value

    @field_validator("audit_signing_key")
    @classmethod
    def _signing_key(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value().strip():
            parse_key(value.get_secret_value())  # a ValueError saying what is wrong
        return value

    @field_validator("audit_verify_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            value = [key.strip() for key in value.split(",") if key.strip()]
        for key in value if isinstance(value, list) else ():
            parse_key(key)
        return value

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
    def audit_key_path(self) -> Path:
        """Where development keeps its generated audit keys: ``audit_key_file``, or
        ``<database>.keys.json`` beside a SQLite database file, or ``auditql.keys.json``
        in the working directory."""
        if self.audit_key_file is not None:
            return self.audit_key_file
        database = make_url(self.database_url).database if self.is_sqlite else None
        if database and database != ":memory:":
            path = Path(database)
            return path.with_name(f"{path.stem}.keys.json")
        return Path("auditql.keys.json")

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
