"""Service settings: the database settings plus what the HTTP service needs.

Every setting is an ``AUDITQL_*`` environment variable; the README's table lists them
(a test keeps the two in step). Lists are comma-separated: ``a,b``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from domain.tokens import MAX_TOKEN_DAYS
from gql.http.persisted import TrustedDocuments
from gql.http.rate_limit import parse_budget
from persistence.settings import DEFAULT_DATABASE_URL, DatabaseSettings


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


CommaList = Annotated[list[str], NoDecode]


class Settings(DatabaseSettings):
    environment: Environment = Field(
        Environment.DEVELOPMENT,
        description="development (GraphiQL, introspection, field suggestions) or "
        "production (none of those)",
    )
    allow_sqlite_in_production: bool = Field(
        False, description="let production mode run on SQLite (off: production refuses it)"
    )
    host: str = Field("127.0.0.1", description="address the server listens on")
    port: int = Field(8000, ge=1, le=65535, description="port the server listens on")
    cors_allowed_origins: CommaList = Field(
        default_factory=list,
        description="origins browsers may call the API from, comma-separated "
        "(e.g. https://app.example.com); none by default",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: LogFormat = Field(
        LogFormat.AUTO, description="json, console, or auto (json in production)"
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="largest request body accepted (413 above it)"
    )
    max_document_bytes: int = Field(
        32_768,
        ge=1024,
        description="largest GraphQL document accepted, in bytes (UTF-8); larger ones get "
        "413 before they are parsed",
    )
    trusted_documents: Path | None = Field(
        None,
        description="a persisted-documents manifest (JSON: SHA-256 hash -> document, as "
        "GraphQL Code Generator writes it): when set, only its documents run",
    )
    persisted_query_cache_size: int = Field(
        1000,
        ge=0,
        description="most automatic persisted queries one process keeps (memory://; "
        "least recently used go first)",
    )
    trust_proxy_headers: bool = Field(
        False,
        description="take the client address from X-Forwarded-For, from trusted proxies only",
    )
    trusted_proxies: CommaList = Field(
        default_factory=lambda: ["127.0.0.1"],
        description="addresses whose proxy headers are trusted, comma-separated",
    )
    shutdown_grace_seconds: int = Field(
        10, ge=0, description="on SIGTERM, how long in-flight requests may take to finish"
    )
    keep_alive_seconds: int = Field(
        75,
        ge=1,
        description="how long an idle client connection stays open; keep it above the "
        "load balancer's idle timeout",
    )
    max_concurrent_requests: int = Field(
        8,
        ge=1,
        description="GraphQL requests served at once; the rest wait their turn in order",
    )
    ready_timeout_seconds: float = Field(
        2.0, gt=0, description="how long /ready waits for the database"
    )
    token_ttl_days: int = Field(
        30, ge=1, le=MAX_TOKEN_DAYS, description="lifetime of tokens issued by login"
    )
    max_query_depth: int = Field(10, ge=1, description="deepest nesting a document may have")
    max_aliases: int = Field(15, ge=0, description="most aliases a document may use")
    max_tokens: int = Field(2000, ge=100, description="most lexical tokens a document may have")
    max_root_fields: int = Field(
        10, ge=1, description="most top-level fields one operation may select"
    )
    max_objects: int = Field(
        10_000,
        ge=1,
        description="most objects one operation may ask for, each list's page size "
        "multiplying what it holds (COST_LIMIT_EXCEEDED above it)",
    )

    rate_limit_per_token: str = Field(
        "50/second;1000/minute",
        description="requests one bearer token may make, e.g. 10/second;600/minute "
        "(empty: no limit)",
    )
    rate_limit_per_address: str = Field(
        "10/second;300/minute",
        description="anonymous requests one client address may make (empty: no limit)",
    )
    sign_in_failure_limit: str = Field(
        "10/minute;50/hour",
        description="rejected tokens and failed logins per client address, and failed "
        "logins per account, before sign-ins are refused (empty: no limit)",
    )
    rate_limit_storage: str = Field(
        "memory://",
        description="where rate-limit counters live: memory:// (per process) or "
        "redis://host:6379/0 (shared by every API process)",
    )

    live_updates: bool = Field(
        True,
        description="serve GraphQL subscriptions over WebSocket (graphql-transport-ws) on "
        "the GraphQL path",
    )
    ws_max_subscriptions_per_connection: int = Field(
        10, ge=1, description="subscriptions one WebSocket connection may run at once"
    )
    ws_max_subscriptions_per_token: int = Field(
        50,
        ge=1,
        description="subscriptions one bearer token may run at once, over all its "
        "connections to one process (anonymous ones: per client address)",
    )
    ws_max_message_bytes: int = Field(
        65_536,
        ge=1024,
        description="largest WebSocket message accepted (closed with 1009 above it)",
    )
    ws_init_timeout_seconds: float = Field(
        5.0, gt=0, description="how long a new WebSocket may take to send connection_init"
    )
    ws_idle_timeout_seconds: float = Field(
        300.0,
        gt=0,
        description="how long a WebSocket without a running subscription may stay silent",
    )
    ws_buffer_events: int = Field(
        1000,
        ge=1,
        description="events one subscription may fall behind by; past it, its connection "
        "is closed with 1013 and the client resumes from its last cursor",
    )
    live_poll_seconds: float = Field(
        1.0,
        gt=0,
        description="how often live updates read the audit trail without being woken "
        "(a missed NOTIFY, another process's SQLite commit)",
    )
    token_cache_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="how long a process uses a token (and its user) as it last read them "
        "before reading them again: a revocation or deactivation made through another "
        "process takes effect within it (through this one, at once); 0 reads every time",
    )
    live_recheck_seconds: float = Field(
        1.0,
        gt=0,
        description="how often WebSocket connections' tokens are checked again: a revoked "
        "token or deactivated user stops receiving within it",
    )

    @field_validator("trusted_documents")
    @classmethod
    def _readable_manifest(cls, value: Path | None) -> Path | None:
        if value is not None:
            TrustedDocuments.load(value)  # a ValueError saying what is wrong with it
        return value

    @field_validator("cors_allowed_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*" or not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
        return origins

    @field_validator("rate_limit_per_token", "rate_limit_per_address", "sign_in_failure_limit")
    @classmethod
    def _budget(cls, value: str) -> str:
        try:
            parse_budget(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate like 10/second;300/minute") from None
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "redis+")):
            raise ValueError("must be memory:// or a redis:// URL")
        return value

    @model_validator(mode="after")
    def _no_sqlite_in_production(self) -> Self:
        if (
            self.environment is Environment.PRODUCTION
            and self.is_sqlite
            and not self.allow_sqlite_in_production
        ):
            which = (
                "the embedded SQLite default"
                if (self.database_url == DEFAULT_DATABASE_URL)
                else "SQLite"
            )
            raise ValueError(
                f"production mode refuses {which}: set AUDITQL_DATABASE_URL to PostgreSQL "
                "(or AUDITQL_ALLOW_SQLITE_IN_PRODUCTION=true)"
            )
        return self

    @model_validator(mode="after")
    def _keys_in_production(self) -> Self:
        if (
            self.environment is Environment.PRODUCTION
            and not self.audit_keks.get_secret_value()
            and self.audit_key_file is None
        ):
            raise ValueError(
                "production mode needs AUDITQL_AUDIT_KEKS, the keys personal audit values "
                "are sealed under (id:base64 of 32 bytes, e.g. k1:$(openssl rand -base64 32)), "
                "or AUDITQL_AUDIT_KEY_FILE naming a file that keeps them"
            )
        return self

    @model_validator(mode="after")
    def _signing_key_in_production(self) -> Self:
        if (
            self.environment is Environment.PRODUCTION
            and not self.audit_signing_key.get_secret_value()
            and self.audit_key_file is None
        ):
            raise ValueError(
                "production mode needs AUDITQL_AUDIT_SIGNING_KEY, the key audit checkpoints "
                "are signed with (e.g. ed25519:k1:$(openssl rand -base64 32)), or "
                "AUDITQL_AUDIT_KEY_FILE naming a file that keeps it"
            )
        return self

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT

    @property
    def json_logs(self) -> bool:
        if self.log_format is LogFormat.AUTO:
            return not self.is_development
        return self.log_format is LogFormat.JSON
