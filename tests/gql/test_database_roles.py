"""Audit integrity through database roles, on PostgreSQL, with the operator's commands.

An owner role migrates a database it owns and runs ``auditql grant APP``; the real
server then runs as the application role. Proven here: every mutation works as that
role and only ever appends to the audit log (earlier entries stay byte-identical, down
to their row version); the role itself is refused UPDATE, DELETE, TRUNCATE, disabling
the trigger, DROP and the other ways around them, by privileges rather than by the
trigger alone; it cannot run migrations on a database that needs them, while ``serve``,
``migrate``, ``migrate current`` and ``migrate check`` at head work for it; ``grant``
converges whatever was granted before, changes nothing with ``--sql``, and refuses the
roles that privileges cannot restrain.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gql.cli import admin
from gql.settings import Settings
from persistence.base import Base
from tests.gql.conftest import LiveServer
from tests.support.postgres import PostgresCluster
from tests.support.schema import input_type, mutation_type, success_type
from tests.support.server import AUDITQL, ROOT, serving

INSUFFICIENT_PRIVILEGE = "42501"
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Roles:
    cluster: PostgresCluster
    owner: str
    app: str
    database: str

    @property
    def owner_url(self) -> str:
        return self.cluster.url(self.database, user=self.owner)

    @property
    def app_url(self) -> str:
        return self.cluster.url(self.database, user=self.app)

    def audit_rows(self) -> set[str]:
        """Every audit entry as text with its row version (xmin): an UPDATE, even one
        that writes the same values, changes the row version."""
        rows = self.cluster.psql(
            "SELECT a.xmin || ' ' || a::text FROM audit_log AS a", self.database
        )
        return set(rows.splitlines())

    def privileges(self) -> set[tuple[str, str]]:
        """(table, privilege) that the application role holds on the tables itself."""
        rows = self.cluster.psql(
            "SELECT table_name || ' ' || privilege_type FROM information_schema.table_privileges"
            f" WHERE grantee = '{self.app}'",
            self.database,
        )
        return {(table, privilege) for table, privilege in map(str.split, rows.splitlines())}


def auditql(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The auditql command as an operator runs it, connected as the role in ``url``."""
    return subprocess.run(
        [AUDITQL, *args], env={**os.environ, "AUDITQL_DATABASE_URL": url}, cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def roles(postgres_cluster: PostgresCluster) -> Iterator[Roles]:
    """An owner, a login application role and an empty database the owner owns. Roles
    belong to the whole (shared) cluster: unique names, dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    roles = Roles(postgres_cluster, f"owner_{suffix}", f"app_{suffix}", f"auditql_roles_{suffix}")
    try:
        postgres_cluster.psql(f"CREATE ROLE {roles.owner} LOGIN")
        postgres_cluster.psql(f"CREATE ROLE {roles.app} LOGIN")
        postgres_cluster.psql(f"CREATE DATABASE {roles.database} OWNER {roles.owner}")
        yield roles
    finally:
        postgres_cluster.psql(f"DROP DATABASE IF EXISTS {roles.database} WITH (FORCE)")
        postgres_cluster.psql(f"DROP ROLE IF EXISTS {roles.app}")
        postgres_cluster.psql(f"DROP ROLE IF EXISTS {roles.owner}")


@pytest.fixture
def granted(roles: Roles) -> Roles:
    """The release step, as the owner: migrate, then grant the application role."""
    succeeded(auditql(roles.owner_url, "migrate"))
    succeeded(auditql(roles.owner_url, "grant", roles.app))
    return roles


@pytest.fixture
def database_url(granted: Roles) -> str:
    """The database ``live_server`` starts on; the tests connect it as the application."""
    return granted.owner_url


@pytest.fixture
async def app_engine(granted: Roles) -> AsyncIterator[AsyncEngine]:
    """A connection as the application role, as the service holds it."""
    engine = create_async_engine(granted.app_url)
    yield engine
    await engine.dispose()


async def superuser_token(roles: Roles) -> str:
    """An operator's superuser and token, created through the application role too."""
    settings = Settings(database_url=roles.app_url)
    await admin.create_user(settings, "ops@example.com", "ops", "", None, superuser=True)
    return await admin.create_token(settings, "ops@example.com", "test", None)


Ids = dict[str, str]

# Every mutation of the schema, in an order where each finds what it needs: (field,
# who calls it, its input from the ids of the objects returned so far, its selection).
CAROL = "carol@example.com"
MUTATIONS: list[tuple[str, str | None, Callable[[Ids], dict[str, Any]], str]] = [
    ("createUser", "ops", lambda i: {"email": CAROL, "username": "carol", "password": PASSWORD},
     "user { id }"),
    ("updateUser", "ops", lambda i: {"id": i["user"], "fullName": "Carol"}, "user { id }"),
    ("login", None, lambda i: {"email": CAROL, "password": PASSWORD}, "token"),
    ("createApiToken", "carol", lambda i: {"name": "laptop"}, "apiToken { id }"),
    ("revokeApiToken", "carol", lambda i: {"id": i["apiToken"]}, "apiToken { id }"),
    ("createTag", "ops", lambda i: {"name": "news"}, "tag { id }"),
    ("updateTag", "ops", lambda i: {"id": i["tag"], "color": "#2563eb"}, "tag { id }"),
    ("createPost", "carol", lambda i: {"title": "Roles"}, "post { id }"),
    ("updatePost", "carol", lambda i: {"id": i["post"], "body": "Two roles."}, "post { id }"),
    ("setPostTags", "carol", lambda i: {"postId": i["post"], "tagIds": [i["tag"]]}, "post { id }"),
    ("publishPost", "carol", lambda i: {"id": i["post"]}, "post { id }"),
    ("createComment", "carol", lambda i: {"postId": i["post"], "body": "First"}, "comment { id }"),
    ("updateComment", "carol", lambda i: {"id": i["comment"], "body": "Second"}, "comment { id }"),
    ("deleteComment", "carol", lambda i: {"id": i["comment"]}, "deletedId"),
    ("restoreComment", "carol", lambda i: {"id": i["comment"]}, "comment { id }"),
    ("createBookmark", "carol", lambda i: {"postId": i["post"], "note": "Later"},
     "bookmark { id }"),
    ("updateBookmark", "carol", lambda i: {"id": i["bookmark"], "note": None}, "bookmark { id }"),
    ("deleteBookmark", "carol", lambda i: {"id": i["bookmark"]}, "deletedId"),
    ("restoreBookmark", "carol", lambda i: {"id": i["bookmark"]}, "bookmark { id }"),
    ("deletePost", "carol", lambda i: {"id": i["post"]}, "deletedId"),
    ("restorePost", "carol", lambda i: {"id": i["post"]}, "post { id }"),
    ("deleteTag", "ops", lambda i: {"id": i["tag"]}, "deletedId"),
    ("createFeatureFlag", "ops", lambda i: {"key": "new-editor", "name": "New editor"},
     "featureFlag { id }"),
    ("updateFeatureFlag", "ops", lambda i: {"id": i["featureFlag"], "enabled": True},
     "featureFlag { id }"),
    ("setFlagOverride", "ops",
     lambda i: {"flagId": i["featureFlag"], "userId": i["user"], "enabled": False},
     "flagOverride { id }"),
    ("removeFlagOverride", "ops", lambda i: {"flagId": i["featureFlag"], "userId": i["user"]},
     "removed"),
    ("deleteFeatureFlag", "ops", lambda i: {"id": i["featureFlag"]}, "deletedId"),
    ("deactivateUser", "ops", lambda i: {"id": i["user"]}, "user { id }"),
    ("eraseUser", "ops", lambda i: {"userId": i["user"]}, "user { id }"),
]  # fmt: skip


def mutation_document(field: str, selection: str) -> tuple[str, str]:
    """The document for one Mutation field, and the name of its success type."""
    success = success_type(field).name
    document = (
        f"mutation($input: {input_type(field)}) {{ {field}(input: $input) "
        f"{{ __typename ... on {success} {{ {selection} }} }} }}"
    )
    return document, success


def test_every_mutation_of_the_schema_is_exercised() -> None:
    assert sorted(field for field, *_ in MUTATIONS) == sorted(mutation_type().fields)


async def test_as_the_application_role_every_mutation_works_and_only_appends_to_the_audit_log(
    granted: Roles, live_server: LiveServer
) -> None:
    tokens = {"ops": await superuser_token(granted)}
    ids: Ids = {}
    with live_server(AUDITQL_DATABASE_URL=granted.app_url) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            for field, actor, make_input, selection in MUTATIONS:
                document, success = mutation_document(field, selection)
                before = granted.audit_rows()
                response = await http.post(
                    "/graphql",
                    json={"query": document, "variables": {"input": make_input(ids)}},
                    headers={"Authorization": f"Bearer {tokens[actor]}"} if actor else {},
                )
                body = response.json()
                assert "errors" not in body, (field, body)
                payload = body["data"][field]
                assert payload["__typename"] == success, payload
                ids |= {
                    key: value["id"] for key, value in payload.items() if isinstance(value, dict)
                }
                if field == "login":
                    tokens["carol"] = payload["token"]
                after = granted.audit_rows()
                assert before <= after, f"{field} changed or removed audit entries"
                assert len(after) > len(before), f"{field} wrote no audit entry"
            listed = await http.post(
                "/graphql",
                json={"query": "{ auditLog(first: 100) { totalCount } }"},
                headers={"Authorization": f"Bearer {tokens['ops']}"},
            )
    assert listed.json()["data"]["auditLog"]["totalCount"] == len(granted.audit_rows())


# What the application role might try against the audit log, and the refusal it gets
# from its privileges (the trigger's own refusal reads "audit_log is append-only").
ATTACKS = [
    ("UPDATE audit_log SET action = 'forged'", "permission denied for table audit_log"),
    ("DELETE FROM audit_log", "permission denied for table audit_log"),
    ("TRUNCATE audit_log", "permission denied for table audit_log"),
    ("ALTER TABLE audit_log DISABLE TRIGGER ALL", "must be owner of table audit_log"),
    ("DROP TRIGGER audit_log_append_only ON audit_log", "must be owner of relation audit_log"),
    ("DROP TABLE audit_log", "must be owner of table audit_log"),
    ("ALTER TABLE audit_log RENAME TO audit_log_old", "must be owner of table audit_log"),
    ("DROP SCHEMA public CASCADE", "must be owner of schema public"),
    ("SET session_replication_role = replica",
     'permission denied to set parameter "session_replication_role"'),
    ("CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger"
     " LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'", "permission denied for schema public"),
    ("UPDATE alembic_version SET version_num = 'forged'",
     "permission denied for table alembic_version"),
]  # fmt: skip


async def test_the_application_role_cannot_change_or_remove_audit_entries(
    granted: Roles, app_engine: AsyncEngine
) -> None:
    await superuser_token(granted)  # a user and a token: audit entries to attack
    before = granted.audit_rows()
    version = granted.cluster.psql("SELECT version_num FROM alembic_version", granted.database)
    assert before
    for statement, refusal in ATTACKS:
        async with app_engine.connect() as connection:
            with pytest.raises(sa_exc.DBAPIError) as raised:
                await connection.execute(text(statement))
            await connection.rollback()
        assert getattr(raised.value.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE, statement
        assert refusal in str(raised.value.orig), statement
    assert granted.audit_rows() == before
    assert granted.cluster.psql("SELECT version_num FROM alembic_version", granted.database) == (
        version
    )


async def test_the_application_role_serves_and_checks_migrations_but_cannot_apply_them(
    roles: Roles, tmp_path: Path
) -> None:
    refused = auditql(roles.app_url, "migrate")
    assert refused.returncode == 1
    assert "permission denied for schema public" in refused.stderr
    succeeded(auditql(roles.owner_url, "migrate"))
    succeeded(auditql(roles.owner_url, "grant", roles.app))
    version = roles.cluster.psql("SELECT version_num FROM alembic_version", roles.database)

    assert "(head)" in succeeded(auditql(roles.app_url, "migrate", "current"))
    assert "matches the models" in succeeded(auditql(roles.app_url, "migrate", "check"))
    succeeded(auditql(roles.app_url, "migrate"))  # nothing to apply at head
    # serve without --no-migrate, in development, where it migrates SQLite databases.
    env = {"AUDITQL_DATABASE_URL": roles.app_url, "AUDITQL_ENVIRONMENT": "development"}
    with serving(env, tmp_path / "server.log") as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
            assert (await http.get("/ready")).status_code == 200
            answer = await http.post("/graphql", json={"query": "{ posts { totalCount } }"})
        assert answer.json() == {"data": {"posts": {"totalCount": 0}}}
    assert roles.cluster.psql("SELECT version_num FROM alembic_version", roles.database) == version


APPEND_ONLY = ("audit_log", "audit_trail", "audit_chain", "audit_checkpoint", "audit_export",
               "audit_prune")  # fmt: skip


def expected_privileges(roles: Roles) -> set[tuple[str, str]]:
    """Read and write on every table the migrations made (partitions are reached
    through their table), except the append-only ones and alembic's."""
    tables = roles.cluster.psql(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'p') AND NOT relispartition",
        roles.database,
    ).split()
    only: dict[str, tuple[str, ...]] = {table: ("SELECT", "INSERT") for table in APPEND_ONLY}
    only["alembic_version"] = ("SELECT",)
    read_write = ("SELECT", "INSERT", "UPDATE", "DELETE")
    return {(table, p) for table in tables for p in only.get(table, read_write)}


def test_grant_converges_and_sql_only_prints(granted: Roles) -> None:
    expected = expected_privileges(granted)
    # Read-write on every table of the models but the append-only ones; two on each of
    # those, one on alembic's.
    append_only = len(APPEND_ONLY)
    assert len(expected) == (len(Base.metadata.tables) - append_only) * 4 + 2 * append_only + 1
    assert granted.privileges() == expected
    granted.cluster.psql(
        f"GRANT ALL ON audit_log, alembic_version TO {granted.app}", granted.database
    )

    printed = succeeded(auditql(granted.owner_url, "grant", granted.app, "--sql"))
    tables = ", ".join(f"public.{table}" for table in sorted(APPEND_ONLY))
    assert f"GRANT SELECT, INSERT ON {tables} TO {granted.app};" in printed.splitlines()
    assert ("audit_log", "UPDATE") in granted.privileges()  # printed, not run

    assert "granted" in succeeded(auditql(granted.owner_url, "grant", granted.app))
    assert granted.privileges() == expected
    succeeded(auditql(granted.owner_url, "grant", granted.app))
    assert granted.privileges() == expected


def test_grant_refuses_roles_that_privileges_cannot_restrain(roles: Roles) -> None:
    roles.cluster.psql(f"CREATE ROLE {roles.app}_admin LOGIN CREATEROLE")
    try:
        refusals = [
            (roles.owner, "owns (or is a member of the owner of)"),
            ("postgres", "is a superuser"),
            (f"{roles.app}_admin", "has CREATEROLE"),
            ("nobody_at_all", "does not exist"),
        ]
        for role, reason in refusals:
            result = auditql(roles.owner_url, "grant", role)
            assert result.returncode == 1, role
            assert result.stderr.startswith(f'error: role "{role}" {reason}'), result.stderr
            assert len(result.stderr.splitlines()) == 1
    finally:
        roles.cluster.psql(f"DROP ROLE {roles.app}_admin")


def test_grant_checks_what_the_role_may_do_afterwards_and_undoes_itself_otherwise(
    granted: Roles,
) -> None:
    not_owner = "the tables' privileges are not yours to grant: run auditql grant as their owner"
    # Run by a role that is not the owner: PostgreSQL only warns about what that role
    # holds without grant option, and refuses the rest.
    granted.cluster.psql(f"REVOKE DELETE ON posts FROM {granted.app}", granted.database)
    result = auditql(granted.app_url, "grant", granted.app)
    assert result.returncode == 1
    assert (
        result.stderr == f'error: role "{granted.app}" did not get DELETE on posts: {not_owner}\n'
    )
    granted.cluster.psql(f"REVOKE ALL ON posts FROM {granted.app}", granted.database)
    result = auditql(granted.app_url, "grant", granted.app)
    assert result.returncode == 1
    assert result.stderr == f"error: {not_owner}\n"
    # A privilege that reaches the role another way, here on one column through PUBLIC.
    granted.cluster.psql("GRANT UPDATE (action) ON audit_log TO PUBLIC", granted.database)
    result = auditql(granted.owner_url, "grant", granted.app)
    assert result.returncode == 1
    assert f'role "{granted.app}" may still UPDATE audit_log' in result.stderr
    assert ("posts", "SELECT") not in granted.privileges()  # the grants were rolled back
