"""The ``auditql`` command. Every command reads its settings from ``AUDITQL_*``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from gql.settings import Settings

app = typer.Typer(
    help="auditql: an audited GraphQL service. Settings come from AUDITQL_* variables; "
    "with none set it uses ./auditql.db in development mode.",
    no_args_is_help=True,
    add_completion=False,
)

SCHEMA_FILE = Path("schema.graphql")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [AUDITQL_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [AUDITQL_PORT].")] = None,
) -> None:
    """Run the service. In development on SQLite, migrations are applied first."""
    import uvicorn

    from gql.app import create_app

    settings = Settings()
    if settings.is_development and settings.is_sqlite:
        asyncio.run(_migrate(settings, "head"))
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
    )


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the database migrations up to REVISION (default: the latest)."""
    asyncio.run(_migrate(Settings(), revision))
    typer.echo(f"migrated to {revision}")


async def _migrate(settings: Settings, revision: str) -> None:
    from persistence import migrations
    from persistence.engine import create_engine

    engine = create_engine(settings)
    try:
        await migrations.run(engine, "upgrade", revision)
    finally:
        await engine.dispose()


def schema_sdl() -> str:
    from strawberry.printer import print_schema

    from gql.schema import build_schema

    return print_schema(build_schema(Settings())) + "\n"


@app.command("export-schema")
def export_schema(
    output: Annotated[Path, typer.Option(help="Where to write the SDL.")] = SCHEMA_FILE,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if OUTPUT differs; write nothing.")
    ] = False,
    check_breaking: Annotated[
        Path | None,
        typer.Option(
            help="An older schema file: list breaking and dangerous changes "
            "since it, exiting 1 on breaking ones."
        ),
    ] = None,
) -> None:
    """Write the GraphQL schema (SDL) that clients generate code from."""
    sdl = schema_sdl()
    if check_breaking is not None:
        _report_changes(check_breaking.read_text(), sdl)
        return
    if check:
        if not output.exists() or output.read_text() != sdl:
            typer.echo(f"{output} is stale: run 'auditql export-schema' and commit it.", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is up to date.")
        return
    output.write_text(sdl)
    typer.echo(f"wrote {output}")


def _report_changes(old_sdl: str, new_sdl: str) -> None:
    from graphql import build_schema, find_breaking_changes, find_dangerous_changes

    old, new = build_schema(old_sdl), build_schema(new_sdl)
    breaking, dangerous = find_breaking_changes(old, new), find_dangerous_changes(old, new)
    for change in breaking:
        typer.echo(f"BREAKING  {change.type.name}: {change.description}")
    for danger in dangerous:
        typer.echo(f"DANGEROUS {danger.type.name}: {danger.description}")
    typer.echo(f"{len(breaking)} breaking, {len(dangerous)} dangerous")
    if breaking:
        raise typer.Exit(1)


@app.command("create-user")
def create_user(
    email: str,
    username: str,
    full_name: Annotated[str, typer.Option(help="Display name.")] = "",
    superuser: Annotated[bool, typer.Option("--superuser", help="May do everything.")] = False,
    password: Annotated[
        str | None,
        typer.Option(help="Prompted for when omitted; --no-login for none."),
    ] = None,
    no_login: Annotated[
        bool, typer.Option("--no-login", help="No password: the user signs in by token only.")
    ] = False,
) -> None:
    """Create a user (as the system)."""
    from gql import admin

    if password is None and not no_login:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user_id = asyncio.run(
        admin.create_user(Settings(), email, username, full_name, password, superuser=superuser)
    )
    typer.echo(f"created user {user_id} ({username})")


@app.command("create-token")
def create_token(
    email: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_in_days: Annotated[
        int | None, typer.Option(help="Lifetime in days; never expires when omitted.")
    ] = None,
) -> None:
    """Issue an API token for a user and print it (it is shown only once)."""
    from gql import admin

    ttl = timedelta(days=expires_in_days) if expires_in_days else None
    typer.echo(asyncio.run(admin.create_token(Settings(), email, name, ttl)))


@app.command("seed-demo")
def seed_demo() -> None:
    """Fill an empty database with demo users, posts, comments, tags and flags, and print
    a token for the demo superuser."""
    from gql import admin

    token = asyncio.run(admin.seed_demo(Settings()))
    typer.echo("demo data created; sign in with this header in the playground:")
    typer.echo(f'{{"Authorization": "Bearer {token}"}}')


def main() -> None:
    from persistence.errors import DomainError

    try:
        app()
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from None
