"""``auditql audit``: verify the audit trail, sign a checkpoint, run the sequencer."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

audit = typer.Typer(help="Verify and attest the audit trail (README, Audit integrity).")


@audit.command()
def verify(
    first: Annotated[
        int | None, typer.Option("--from", min=1, help="First position to check.")
    ] = None,
    last: Annotated[int | None, typer.Option("--to", min=1, help="Last position to check.")] = None,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoints",
            help="Checkpoints kept outside the database (JSON lines of the server log, "
            "or of `auditql audit checkpoint`): they also reveal a trail cut short.",
        ),
    ] = None,
    export_file: Annotated[
        Path | None,
        typer.Option("--export", exists=True, dir_okay=False, help="Verify an export file."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """Recompute the chain and name the first entry edited, deleted, inserted or
    reordered, and any truncation; exit 1 on any problem."""
    from gql.cli.config import settings_or_exit

    if export_file is not None:
        from persistence.integrity import trusted_keys_of
        from persistence.retention import verify_export

        report = verify_export(export_file, trusted_keys_of(settings_or_exit()))
    else:
        external = [signed for path in checkpoints or [] for signed in _read_checkpoints(path)]
        report = asyncio.run(_verify(_operator(settings_or_exit()), first, last, external))
    if as_json:
        typer.echo(json.dumps(_jsonable(report), indent=2))
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(1)


@audit.command()
def checkpoint() -> None:
    """Sign a checkpoint of the chain's head now, after verifying everything since the
    last one; print it (keep the line: it attests the trail outside the database)."""
    from gql.cli.config import settings_or_exit

    signed = asyncio.run(_checkpoint(_operator(settings_or_exit())))
    typer.echo(json.dumps(signed))


@audit.command()
def export(
    before: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="The first day of a month.")
    ],
    output: Annotated[Path, typer.Option(help="The file to write (JSON lines, gzipped).")],
) -> None:
    """Write every entry created before BEFORE that no export holds yet, with the hashes
    that chain them and a signed cut; keep the file: prune takes it."""
    from gql.cli.config import settings_or_exit

    if output.exists():
        raise typer.BadParameter(f"{output} exists; choose a new file", param_hint="--output")
    done = asyncio.run(_export(_operator(settings_or_exit()), before.date(), output))
    typer.echo(
        f"exported {done.entries} entries (positions {done.first} to {done.through}) to "
        f"{done.path}, sha256 {done.sha256}"
    )


@audit.command()
def prune(
    before: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="The first day of a month.")
    ],
    export: Annotated[
        Path, typer.Option("--export", exists=True, dir_okay=False, help="Its export file.")
    ],
) -> None:
    """Remove the entries created before BEFORE, once exported to EXPORT (as the tables'
    owner); verification then starts from the export's signed cut."""
    from gql.cli.config import settings_or_exit

    done = asyncio.run(_prune(_operator(settings_or_exit()), before.date(), export))
    months = f" (partitions {', '.join(done.partitions)})" if done.partitions else ""
    typer.echo(f"pruned {done.entries} entries through position {done.through}{months}")


@audit.command()
def partitions() -> None:
    """Make the audit log's monthly partitions for this month and the next three
    (PostgreSQL, as the tables' owner; run it monthly). Idempotent."""
    from gql.cli.config import settings_or_exit

    made = asyncio.run(_partitions(settings_or_exit()))
    typer.echo(f"made {', '.join(made)}" if made else "every partition is there already")


@audit.command("public-key")
def public_key() -> None:
    """Print the key checkpoints are verified with, for auditors (AUDITQL_AUDIT_VERIFY_KEYS
    takes it as is). An HMAC key has no public half: verifying takes the secret itself."""
    from gql.cli.config import settings_or_exit
    from persistence.integrity import signing_key_of

    verifying = signing_key_of(settings_or_exit()).verifying
    if verifying.algorithm != "ed25519":
        typer.echo("error: an hmac-sha256 key has no public half to hand out", err=True)
        raise typer.Exit(1)
    typer.echo(str(verifying))


@audit.command()
def sequencer() -> None:
    """Give new entries their positions and sign interval checkpoints, until stopped:
    for deployments whose API processes run with AUDITQL_AUDIT_SEQUENCER=off."""
    from gql.cli.config import settings_or_exit
    from gql.cli.logs import configure_logging

    config = settings_or_exit()
    configure_logging(config)
    asyncio.run(_sequence_forever(config))


async def _verify(
    config: Any, first: int | None, last: int | None, external: list[tuple[bytes, bytes]]
) -> Any:
    from gql.cli.database import opened
    from persistence.integrity import sequencer_of, trusted_keys_of
    from persistence.verification import verify as verify_trail

    async with opened(config) as database:
        async with sequencer_of(config) as sequencer:
            await sequencer.sequence()  # entries committed until now
        async with database.engine.connect() as connection:
            return await verify_trail(
                connection, trusted_keys_of(config), first=first, last=last, external=external
            )


async def _checkpoint(config: Any) -> dict[str, str]:
    from gql.cli.database import opened
    from persistence.integrity import checkpointer_of, sequencer_of, trusted_keys_of
    from persistence.verification import attest

    async with opened(config) as database:
        async with sequencer_of(config) as sequencer:
            await sequencer.sequence()
        return await attest(database, checkpointer_of(config), trusted_keys_of(config))


async def _export(config: Any, before: Any, output: Path) -> Any:
    from gql.cli.database import opened
    from persistence.engine import writing
    from persistence.integrity import checkpointer_of, sequencer_of, trusted_keys_of
    from persistence.retention import export

    async with opened(config) as database:
        async with sequencer_of(config) as sequencer:
            await sequencer.sequence()
        async with writing(database.engine).begin() as connection:
            return await export(
                connection, checkpointer_of(config), trusted_keys_of(config), before, output
            )


async def _prune(config: Any, before: Any, export_file: Path) -> Any:
    from gql.cli.database import opened
    from persistence.engine import writing
    from persistence.integrity import trusted_keys_of
    from persistence.retention import prune

    async with opened(config) as database, writing(database.engine).begin() as connection:
        return await prune(connection, trusted_keys_of(config), before, export_file)


async def _partitions(config: Any) -> list[str]:
    from gql.cli.database import opened
    from persistence.errors import DomainError
    from persistence.retention import make_partitions

    if config.is_sqlite:
        raise DomainError("SQLite keeps the audit log in one table: it has no partitions")
    async with opened(config) as database, database.engine.begin() as connection:
        return await make_partitions(connection)


def _operator(config: Any) -> Any:
    """The settings of a command over the whole trail: its statements may take long."""
    from persistence.integrity import LONG_STATEMENT_MS

    return config.model_copy(update={"db_statement_timeout_ms": LONG_STATEMENT_MS})


async def _sequence_forever(config: Any) -> None:
    from gql.cli.database import opened
    from persistence.integrity import sequencer_of

    async with opened(config), sequencer_of(config) as sequencer:
        await sequencer.run()


def _read_checkpoints(path: Path) -> list[tuple[bytes, bytes]]:
    """(statement, signature) of every checkpoint in a file of JSON lines: the log's
    records (a ``checkpoint`` object) or bare checkpoints; other lines are skipped."""
    from persistence.checkpoints import imported

    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path} ({exc.strerror})") from None
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        signed = imported(record.get("checkpoint", record) if isinstance(record, dict) else None)
        if signed is not None:
            found.append(signed)
    return found


def _print(report: Any) -> None:
    if report.ok and report.head == 0:
        typer.echo("the audit trail has no entries yet: nothing to verify")
        return
    start = f"after the checkpoint at {report.anchor}" if report.anchor else "from the genesis"
    verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
    typer.echo(
        f"checked positions {report.anchor + 1} to {report.through} ({report.checked} entries) "
        f"{start}, of {report.head}: {verdict}"
    )
    for problem in report.problems:
        where = f"at position {problem.position}" if problem.position else "without a position"
        typer.echo(f"{problem.kind.upper()} {where}: {problem.detail}")
    attested = report.last_checkpoint if report.last_checkpoint is not None else "none"
    typer.echo(
        f"last signed checkpoint: {attested}; not yet attested: {report.unattested}; "
        f"awaiting a position: {report.pending}"
    )


def _jsonable(report: Any) -> dict[str, Any]:
    values = asdict(report)
    values["ok"] = report.ok
    for problem in values["problems"]:
        problem["entry_id"] = str(problem["entry_id"]) if problem["entry_id"] else None
    return values
