"""The auditql command: users, tokens and demo data that then work against the API."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette
from typer.testing import CliRunner, Result

from gql.cli.main import cli, main
from gql.http.app import create_app
from gql.settings import Settings
from persistence import migrations
from persistence.engine import Database
from tests.conftest import backend_url
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


def auditql(
    *args: str, env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed command as a shell runs it: what it prints, tracebacks included."""
    return subprocess.run([AUDITQL, *args], env={**os.environ, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def bearer(output: str) -> str:
    """The token in seed-demo's ``{"Authorization": "Bearer aq_..."}``."""
    found = re.fullmatch(r'\{"Authorization": "Bearer (aq_[A-Za-z0-9_-]{43})"\}\n', output)
    assert found is not None, output
    return found.group(1)


def never_migrated() -> str:
    return (
        f"error: the database was never migrated, the code expects {migrations.head()}: "
        "run `auditql migrate`\n"
    )


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
async def test_seed_demo_again_leaves_the_data_and_prints_a_new_token(
    client: GraphQLClient, app: Starlette
) -> None:
    first = await invoke("seed-demo")
    assert first.exit_code == 0, first.output
    assert first.stderr == "demo data created; sign in with this header in the playground:\n"
    again = await invoke("seed-demo")
    assert again.exit_code == 0, again.output
    assert (
        again.stderr
        == "demo data already there, kept; sign in with this header in the playground:\n"
    )
    tokens = {bearer(first.stdout), bearer(again.stdout)}
    assert len(tokens) == 2
    for token in tokens:
        data = await client.execute(
            "{ viewer { username } posts { totalCount } tags { totalCount } }", token=token
        )
        assert data["viewer"]["username"] == "admin"
        assert data["posts"]["totalCount"] == 2  # the superuser also sees the draft
        assert data["tags"]["totalCount"] == 2


async def test_seed_demo_is_the_first_command_in_a_fresh_directory(tmp_path: Path) -> None:
    """It migrates the new database first; run again with --count, it numbers the
    generated posts on from the earlier ones."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    env = {"AUDITQL_DATABASE_URL": url}
    seeded = await asyncio.to_thread(auditql, "seed-demo", "--count", "3", env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "Traceback" not in seeded.stderr
    again = await asyncio.to_thread(auditql, "seed-demo", "--count", "2", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "demo data already there, kept" in again.stderr
    app = create_app(Settings(database_url=url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        data = await GraphQLClient(http).execute(
            "{ viewer { username } posts { totalCount } }", token=bearer(seeded.stdout)
        )
    assert data == {"viewer": {"username": "admin"}, "posts": {"totalCount": 2 + 3 + 2}}


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        pytest.param(
            {"AUDITQL_ENVIRONMENT": "production", "AUDITQL_ALLOW_SQLITE_IN_PRODUCTION": "true"},
            ["seed-demo"], None, id="production-never-migrates",
        ),
        pytest.param(
            {}, ["create-token", "nobody@example.com"], "error: User not found.\n",
            id="development-migrates-then-fails",
        ),
    ],
)  # fmt: skip
def test_a_failed_command_leaves_no_database_file(
    tmp_path: Path, env: dict[str, str], args: list[str], message: str | None
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'auditql.db'}"
    result = auditql(*args, env={"AUDITQL_DATABASE_URL": url, **env}, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1:] == (message or never_migrated()).splitlines()
    assert list(tmp_path.iterdir()) == []


def test_commands_refuse_an_unmigrated_postgresql_database_in_one_line(
    request: pytest.FixtureRequest,
) -> None:
    url = backend_url(request, "postgresql", "auditql_never_migrated")
    for args in (
        ["seed-demo"],
        ["create-token", "ops@example.com"],
        ["create-user", "ops@example.com", "ops", "--no-login"],
    ):
        result = auditql(*args, env={"AUDITQL_DATABASE_URL": url})
        assert (result.returncode, result.stdout, result.stderr) == (1, "", never_migrated())
    cluster = request.getfixturevalue("postgres_cluster")
    assert (
        cluster.psql(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "auditql_never_migrated"
        )
        == "0\n"
    )


def test_a_database_that_refuses_the_connection_is_one_line(
    request: pytest.FixtureRequest,
) -> None:
    cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.url("postgres")
    wrong_password = url.replace("postgres@", "nobody:wrong@", 1)
    no_database = cluster.url("auditql_no_such_database")
    closed_port = "postgresql+asyncpg://auditql@127.0.0.1:9/auditql"
    for target, cause in (
        (wrong_password, 'role "nobody" does not exist'),
        (no_database, 'database "auditql_no_such_database" does not exist'),
        (closed_port, "Connect call failed"),
    ):
        for args in (["migrate"], ["seed-demo"]):
            result = auditql(*args, env={"AUDITQL_DATABASE_URL": target})
            assert result.returncode == 1, result.stderr
            [line] = result.stderr.splitlines()
            assert line.startswith("error: cannot connect to the database"), line
            assert cause in line


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

    def create_user(*args: str) -> subprocess.CompletedProcess[str]:
        return auditql("create-user", *args, env={"AUDITQL_DATABASE_URL": database_url})

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
