"""Service settings: the database settings plus what the HTTP service needs."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from persistence.settings import DatabaseSettings


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(DatabaseSettings):
    environment: Environment = Field(
        Environment.DEVELOPMENT,
        description="development (GraphiQL, introspection) or production (locked down).",
    )
    host: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the server listens on.")
    token_ttl_days: int = Field(
        30, ge=1, description="Lifetime of tokens issued by login, in days."
    )

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT
