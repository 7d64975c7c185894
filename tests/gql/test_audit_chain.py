"""The audit chain on both databases: positions in commit order, a trail that verifies,
signed checkpoints, and the same over the CLI and GraphQL."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from gql.cli.main import cli
from gql.http.app import create_app
from gql.schema.ids import to_global_id
from gql.settings import Settings
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models.audit_chain import AuditCheckpoint
from persistence.unit_of_work import UnitOfWork
from tests.factories.tag import create_tag
from tests.gql.conftest import Person
from tests.support.audit import audit_entries
from tests.support.audit_chain import (
    as_owner,
    chain_length,
    positions,
    sequence,
    upgraded_with_entries,
    verified,
)
from tests.support.graphql import GraphQLClient, codes

SYSTEM = AuditContext(actor_id=None)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The app without its background sequencer: these tests run its passes themselves."""
    return Settings(database_url=database_url, audit_sequencer=False)


async def tags(database: Database, count: int) -> list[str]:
    """``count`` tags, each in its own committed unit of work; their ids."""
    made = []
    for _ in range(count):
        async with UnitOfWork(database, SYSTEM) as uow:
            made.append(str((await create_tag(uow)).id))
    return made


async def entry_ids(database: Database) -> list[object]:
    return [entry.id for entry in await audit_entries(database)]


async def invoke(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_every_committed_entry_gets_one_position_in_commit_order(
    served_database: Database, settings: Settings
) -> None:
    await tags(served_database, 3)
    with pytest.raises(RuntimeError, match="rolled back"):
        async with UnitOfWork(served_database, SYSTEM) as uow:
            await create_tag(uow, name="never")
            raise RuntimeError("rolled back")
    await tags(served_database, 2)
    await sequence(settings)
    await sequence(settings)  # a second pass finds nothing new

    ids = await entry_ids(served_database)
    assert len(ids) == 5  # the rolled-back tag left no entry to sequence
    assert await positions(served_database, ids) == [1, 2, 3, 4, 5]
    report = await verified(served_database, settings)
    assert report.ok, report.problems
    assert (report.checked, report.head, report.pending) == (5, 5, 0)


async def test_a_checkpoint_is_signed_and_attests_the_head(
    served_database: Database, settings: Settings
) -> None:
    await tags(served_database, 2)
    await sequence(settings)  # the first pass signs one: none existed
    await tags(served_database, 1)
    await sequence(settings)  # not due again: a minute and 10,000 entries away

    report = await verified(served_database, settings)
    assert report.ok, report.problems
    assert (report.last_checkpoint, report.unattested) == (2, 1)
    async with served_database.engine.connect() as connection:
        kinds = (await connection.execute(select(AuditCheckpoint.kind))).scalars().all()
    assert kinds == ["interval"]


async def test_the_cli_verifies_signs_on_demand_and_reads_kept_checkpoints(
    served_database: Database, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUDITQL_DATABASE_URL", database_url)
    await tags(served_database, 3)

    signed = await invoke("audit", "checkpoint")
    assert signed.exit_code == 0, signed.output
    kept = tmp_path / "checkpoints.jsonl"
    kept.write_text(signed.stdout)
    statement = json.loads(json.loads(signed.stdout)["statement"])
    assert (statement["position"], statement["kind"], statement["kid"]) == (3, "demand", "test")

    result = await invoke("audit", "verify", "--checkpoints", str(kept))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "checked positions 1 to 3 (3 entries) from the genesis, of 3: ok",
        "last signed checkpoint: 3; not yet attested: 0; awaiting a position: 0",
    ]
    as_json = await invoke("audit", "verify", "--json", "--from", "2")
    report = json.loads(as_json.stdout)
    assert (report["ok"], report["anchor"], report["through"]) == (True, 0, 3)


async def test_a_checkpoint_signed_with_another_key_is_reported_forged(
    served_database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await tags(served_database, 1)
    stranger_key = "hmac-sha256:stranger:" + base64.b64encode(bytes(32)).decode()
    stranger = settings.model_copy(update={"audit_signing_key": SecretStr(stranger_key)})
    await sequence(stranger)  # signs its first checkpoint with a key the trail does not trust

    report = await verified(served_database, settings)
    assert [(p.kind, p.position) for p in report.problems] == [("forged_checkpoint", 1)]
    assert "unknown key" in report.problems[0].detail


async def test_entries_written_before_the_chain_are_chained_first_in_creation_order(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """An installation upgraded with entries already in its log keeps them, first."""
    url = str(request.getfixturevalue("database_url")).replace("auditql_e2e", "auditql_old")
    if backend == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        name = str(make_url(url).database)
        cluster.psql(f'CREATE DATABASE "{name}"')
    settings = Settings(database_url=url)
    database = Database.from_settings(settings)
    try:
        # The newer one first: they are chained in the order they were created.
        await upgraded_with_entries(
            database, [datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)]
        )
        await tags(database, 1)
        await sequence(settings)

        ids = await entry_ids(database)
        assert ids[:2] == [UUID(int=2), UUID(int=1)]
        assert await positions(database, ids) == [1, 2, 3]  # oldest first, then the new tag
        report = await verified(database, settings)
        assert report.ok, report.problems
    finally:
        await database.dispose()


# -- GraphQL -----------------------------------------------------------------------------

VERIFY = """query($from: String, $to: String) { verifyAudit(from: $from, to: $to) {
  ok anchor through head checked lastCheckpoint unattested pending
  problems { kind position entryId detail } } }"""
HISTORY = """query($id: ID!) { node(id: $id) { ... on Tag { history(first: 10) {
  verified edges { node { action position } } } } } }"""


async def test_verify_audit_answers_superusers_only(
    client: GraphQLClient, app_database: Database, settings: Settings, admin: Person, alice: Person
) -> None:
    await tags(app_database, 2)
    await sequence(settings)

    data = await client.execute(VERIFY, token=admin.token)
    result = data["verifyAudit"]
    assert (result["ok"], result["anchor"], result["problems"]) == (True, "0", [])
    assert result["through"] == result["head"] == str(await chain_length(app_database))

    response = (await client.post(VERIFY, token=alice.token)).json()
    assert response["data"] == {"verifyAudit": None}
    assert codes(response["errors"]) == ["FORBIDDEN"]
    for bad in ("0", "-1", "x", "1e3", "9223372036854775808"):
        errors = await client.errors(VERIFY, {"from": bad}, token=admin.token)
        assert codes(errors) == ["BAD_USER_INPUT"], bad


async def test_history_shows_positions_and_whether_its_entries_verify(
    client: GraphQLClient,
    app_database: Database,
    settings: Settings,
    admin: Person,
    database_url: str,
    backend: str,
) -> None:
    [tag_id] = await tags(app_database, 1)
    node = {"id": to_global_id("Tag", UUID(tag_id))}
    pending = await client.execute(HISTORY, node, token=admin.token)
    history = pending["node"]["history"]
    if backend == "postgresql":  # positions come with the sequencer's next pass
        assert history == {
            "verified": None,
            "edges": [{"node": {"action": "CREATE", "position": None}}],
        }
    await sequence(settings)
    data = await client.execute(HISTORY, node, token=admin.token)
    [edge] = data["node"]["history"]["edges"]
    assert data["node"]["history"]["verified"] is True
    assert edge["node"]["position"] == str(await chain_length(app_database))

    await as_owner(
        database_url, f"UPDATE audit_log SET action = 'update' WHERE entity_id = '{tag_id}'"
    )
    data = await client.execute(HISTORY, node, token=admin.token)
    assert data["node"]["history"]["verified"] is False


async def test_the_app_sequences_in_the_background_and_reports_it(database_url: str) -> None:
    settings = Settings(database_url=database_url, audit_sequence_interval_ms=10)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database: Database = app.state.database
        await tags(database, 2)
        ids = await entry_ids(database)
        for _ in range(500):  # the background pass comes within milliseconds
            if None not in await positions(database, ids):
                break
            await asyncio.sleep(0.01)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            metrics = (await http.get("/metrics")).text
        found = await positions(database, ids)
    assert found == [1, 2]
    passes = re.search(r"^auditql_audit_sequencer_passes_total (\S+)$", metrics, re.M)
    sequenced = re.search(r"^auditql_audit_sequenced_entries_total (\S+)$", metrics, re.M)
    assert passes is not None
    assert sequenced is not None
    assert float(passes.group(1)) >= 1
    if database.engine.dialect.name == "postgresql":  # SQLite chains as it commits
        assert float(sequenced.group(1)) == 2
        assert re.search(r"^auditql_audit_sequencer_lag_seconds \S+$", metrics, re.M)
