"""Loading settings at start-up: a bad value stops the process with one clear line."""

from __future__ import annotations

from pydantic import ValidationError

from gql.settings import Settings


class ConfigurationError(Exception):
    """A setting has a value the service cannot run with."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """``AUDITQL_PORT: Input should be less than or equal to 65535`` (first problem)."""
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"] if part != "__root__"]
    variable = f"AUDITQL_{location[0].upper()}: " if location else ""
    return f"invalid configuration: {variable}{error['msg'].removeprefix('Value error, ')}"
