"""The auditql command: users, tokens and demo data that then work against the API."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette
from typer.testing import CliRunner, Result

from gql.cli.main import cli, main
from persistence.engine import Database
from tests.gql.conftest import LiveServer, Scene
from tests.support.graphql import GraphQLClient
from tests.support.server import AUDITQL

LOGIN = """mutation($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    __typename ... on TokenSuccess { token } } }"""
CREATE_USER = """mutation($input: CreateUserInput!) { createUser(input: $input) {
  __typename ... on ValidationError { field message } } }"""


async def invoke(*args: str) -> Result:
    """Run the command in a thread: it has its own event loop, as from a shell."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    """Point the command at the test's database, as AUDITQL_DATABASE_URL would."""
    monkeypatch.setenv("AUDITQL_DATABASE_URL", database_url)


@pytest.mark.usefixtures("cli_env")
async def test_create_user_and_token_then_sign_in(client: GraphQLClient, app: Starlette) -> None:
    result = await invoke(
        "create-user", "ops@example.com", "ops", "--superuser", "--password", "x" * 16
    )
    assert result.exit_code == 0, result.output
    result = await invoke("create-token", "OPS@example.com", "--expires-in-days", "2")
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert re.fullmatch(r"aq_[A-Za-z0-9_-]{43}", token)
    data = await client.execute("{ viewer { username isSuperuser } }", token=token)
    assert data["viewer"] == {"username": "ops", "isSuperuser": True}
    login = await client.execute(
        """mutation { login(input: {email: "ops@example.com", password: "xxxxxxxxxxxxxxxx"}) {
             __typename } }"""
    )
    assert login["login"]["__typename"] == "TokenSuccess"


@pytest.mark.usefixtures("cli_env")
async def test_seed_demo_prints_a_working_token_once(client: GraphQLClient, app: Starlette) -> None:
    result = await invoke("seed-demo")
    assert result.exit_code == 0, result.output
    token = re.search(r"Bearer (aq_[A-Za-z0-9_-]+)", result.output)
    assert token is not None
    data = await client.execute(
        "{ viewer { username } posts { totalCount } tags { totalCount } }", token=token.group(1)
    )
    assert data["viewer"]["username"] == "admin"
    assert data["posts"]["totalCount"] == 2  # the superuser also sees the draft
    assert data["tags"]["totalCount"] == 2


@pytest.mark.usefixtures("cli_env")
def test_a_broken_rule_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.argv", ["auditql", "create-token", "nobody@example.com"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    assert capsys.readouterr().err.strip() == "error: User not found."


def test_the_console_script_is_installed() -> None:
    result = subprocess.run(["uv", "run", "auditql", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("serve", "migrate", "export-schema", "create-user", "create-token"):
        assert command in result.stdout


@pytest.mark.usefixtures("cli_env")
async def test_migrate_check_detects_a_database_that_drifted(app_database: Database) -> None:
    result = await invoke("migrate", "check")
    assert result.exit_code == 0, result.output
    assert "the database matches the models" in result.output
    async with app_database.engine.begin() as connection:
        await connection.execute(text("DROP INDEX ix_posts_status_published_at"))
    result = await invoke("migrate", "check")
    assert result.exit_code == 1
    assert "differs from the models" in result.output


@pytest.mark.usefixtures("cli_env", "app_database")
async def test_migrate_current_and_sql() -> None:
    current = await invoke("migrate", "current")
    assert current.exit_code == 0, current.output
    assert "(head)" in current.output
    sql = await invoke("migrate", "--sql")
    assert sql.exit_code == 0, sql.output
    assert "CREATE TABLE audit_log" in sql.output


def test_grant_refuses_sqlite_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = tmp_path / "auditql.db"
    monkeypatch.setenv("AUDITQL_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    result = CliRunner().invoke(cli, ["grant", "auditql_app"])
    assert result.exit_code == 2
    assert result.stderr == "error: auditql grant needs PostgreSQL; SQLite has no roles\n"
    assert result.stdout == ""
    assert not database.exists()  # refused before connecting


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_the_command_line_applies_the_api_s_rules_with_its_messages(
    live_server: LiveServer, scene: Scene, database_url: str
) -> None:
    """`auditql create-user` and `createUser` refuse the same passwords with the same
    words; what the command line creates signs in through the server."""
    env = {**os.environ, "AUDITQL_DATABASE_URL": database_url}

    def create_user(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AUDITQL, "create-user", *args], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    admin = create_user("root@example.com", "root", "--superuser", "--password", "r" * 16)
    assert admin.returncode == 0, admin.stderr
    with live_server() as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            graphql = GraphQLClient(http)
            login = await graphql.execute(
                LOGIN, {"email": "root@example.com", "password": "r" * 16}
            )
            root = login["login"]["token"]
            for password in ("abc", "x" * 1025):
                refused = create_user("weak@example.com", "weak", "--password", password)
                answer = await graphql.execute(
                    CREATE_USER,
                    {"input": {"email": "weak@example.com", "username": "weak",
                               "password": password}},
                    token=root,
                )  # fmt: skip
                api_message = answer["createUser"]["message"]
                assert answer["createUser"]["field"] == "password"
                assert refused.returncode == 1
                assert refused.stderr == f"error: {api_message}\n"
            weak = await graphql.execute(LOGIN, {"email": "weak@example.com", "password": "abc"})
            users = await graphql.execute("{ users(first: 10) { totalCount } }", token=root)
    assert weak["login"]["__typename"] == "InvalidCredentialsError"
    assert users["users"]["totalCount"] == 2  # alice and root: nothing of the refused ones
