"""Loading settings at start-up: a bad value stops the process with one clear line."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from gql.settings import Settings


class ConfigurationError(Exception):
    """A setting has a value the service cannot run with."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(describe(exc)) from None


def settings_or_exit() -> Settings:
    """The settings, or one clear line and exit status 2 when a value is invalid."""
    try:
        return load_settings()
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def describe(exc: ValidationError) -> str:
    """``AUDITQL_PORT: Input should be less than or equal to 65535`` (first problem)."""
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"] if part != "__root__"]
    variable = f"AUDITQL_{location[0].upper()}: " if location else ""
    return f"invalid configuration: {variable}{error['msg'].removeprefix('Value error, ')}"
