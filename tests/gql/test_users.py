"""Users over HTTP: the viewer, the list, who sees emails, and user management."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gql.schema.ids import to_global_id
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import User
from persistence.repositories.user import UserRepository
from persistence.security import hash_password
from persistence.unit_of_work import UnitOfWork
from tests.gql.conftest import Person
from tests.support.audit import audit_entries
from tests.support.graphql import GraphQLClient, codes, without_request_ids

USERS = """
query($filter: UserFilter, $orderBy: [UserOrder!], $first: Int, $after: String,
      $last: Int, $before: String) {
  users(filter: $filter, orderBy: $orderBy, first: $first, after: $after, last: $last,
        before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id username email isActive } }
  }
}"""

USER = "user { id username fullName email isActive isSuperuser version }"
ERRORS = {
    "ValidationError": "invalid: field",  # aliased: the two `field`s differ in nullability
    "AlreadyExistsError": "taken: field",
    "ConflictError": "currentVersion",
}


def mutation(name: str, input_type: str, *errors: str) -> str:
    cases = " ".join(f"... on {error} {{ {ERRORS[error]} }}" for error in errors)
    return f"""mutation($input: {input_type}!) {{ {name}(input: $input) {{
      __typename ... on UserSuccess {{ {USER} }} ... on Error {{ code message }} {cases} }} }}"""


CREATE = mutation("createUser", "CreateUserInput", "ValidationError", "AlreadyExistsError")
UPDATE = mutation("updateUser", "UpdateUserInput", *ERRORS)
DEACTIVATE = mutation("deactivateUser", "DeactivateUserInput", "ValidationError", "ConflictError")
LOGIN = """mutation($input: LoginInput!) { login(input: $input) {
  __typename ... on TokenSuccess { token } } }"""


async def add_user(
    database: Database,
    username: str,
    *,
    full_name: str = "",
    active: bool = True,
    password: str | None = None,
    superuser: bool = False,
) -> User:
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        return await UserRepository(uow.session).add(
            User(email=f"{username}@example.com", username=username, full_name=full_name,
                 is_active=active, is_superuser=superuser,
                 password_hash=hash_password(password) if password else None)
        )  # fmt: skip


async def stored(database: Database, user_id: int) -> User:
    async with database.reader() as session:
        return await UserRepository(session).get_or_raise(user_id)


async def list_users(
    client: GraphQLClient, token: str | None = None, **variables: Any
) -> dict[str, Any]:
    users: dict[str, Any] = (await client.execute(USERS, variables, token=token))["users"]
    return users


def field_of(result: dict[str, Any]) -> str | None:
    field: str | None = result.get("invalid") or result.get("taken")
    return field


def names(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["username"] for edge in connection["edges"]]


# -- reading ----------------------------------------------------------------------------


async def test_viewer_is_the_signed_in_user(client: GraphQLClient, alice: Person) -> None:
    query = "{ viewer { id username email isSuperuser } }"
    assert (await client.execute(query))["viewer"] is None
    viewer = (await client.execute(query, token=alice.token))["viewer"]
    assert viewer == {"id": alice.id, "username": "alice", "email": "alice@example.com",
                      "isSuperuser": False}  # fmt: skip


async def test_search_matches_text_literally(
    client: GraphQLClient, app_database: Database, alice: Person, bob: Person
) -> None:
    await add_user(app_database, "percent", full_name="Half % Done")
    await add_user(app_database, "snake_case", full_name="Snake")
    await add_user(app_database, "backslash", full_name="C:\\temp")
    await add_user(app_database, "plain", full_name="Plainly Done")

    async def search(text: str) -> list[str]:
        return names(await list_users(client, alice.token, filter={"search": text}))

    assert await search("%") == ["percent"]
    assert await search("_") == ["snake_case"]
    assert await search("\\") == ["backslash"]
    assert await search("f % d") == ["percent"]  # any case
    assert await search("DONE") == ["percent", "plain"]
    assert await search("nobody") == []


async def test_only_superusers_see_inactive_users(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person
) -> None:
    await add_user(app_database, "gone", active=False)
    active = ["admin", "alice"]
    assert names(await list_users(client)) == active
    assert names(await list_users(client, alice.token)) == active
    # The filter is for superusers; others keep seeing active users only.
    assert names(await list_users(client, alice.token, filter={"isActive": False})) == active
    assert names(await list_users(client, admin.token)) == ["admin", "alice", "gone"]
    inactive = await list_users(client, admin.token, filter={"isActive": False})
    assert names(inactive) == ["gone"]
    assert inactive["totalCount"] == 1
    assert names(await list_users(client, admin.token, filter={"isActive": True})) == active


async def test_users_filter_by_username_and_superuser(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, bob: Person
) -> None:
    await add_user(app_database, "boss", superuser=True)
    await add_user(app_database, "retired", active=False, superuser=True)

    async def listed(who: Person | None, **filter: Any) -> list[str]:
        return names(await list_users(client, who.token if who else None, filter=filter))

    assert await listed(None, username="ALICE") == ["alice"]  # any case, but whole
    assert await listed(alice, username="ali") == []
    assert await listed(alice, isSuperuser=True) == ["admin", "boss"]
    assert await listed(admin, isSuperuser=True) == ["admin", "boss", "retired"]
    assert await listed(admin, isSuperuser=True, isActive=False) == ["retired"]
    assert await listed(bob, isSuperuser=False, search="b") == ["bob"]
    assert await listed(admin, username="retired", isSuperuser=False) == []
    errors = await client.errors(USERS, {"filter": {"username": "a\x00b"}})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert errors[0]["message"].startswith("filter.username ")


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (["USERNAME_ASC"], ["alice", "bob", "carol", "dave"]),
        (["USERNAME_DESC"], ["dave", "carol", "bob", "alice"]),
        (["CREATED_AT_ASC"], ["carol", "alice", "dave", "bob"]),
        (["CREATED_AT_DESC"], ["bob", "dave", "alice", "carol"]),
    ],
)
async def test_users_are_ordered_by_request(
    client: GraphQLClient, app_database: Database, order: list[str], expected: list[str]
) -> None:
    for name in ("carol", "alice", "dave", "bob"):  # creation order differs from names
        await add_user(app_database, name)
    assert names(await list_users(client, orderBy=order)) == expected


async def test_users_paginate_with_cursors(client: GraphQLClient, app_database: Database) -> None:
    for name in ("ann", "ben", "cat", "dan", "eve"):
        await add_user(app_database, name)
    page = await list_users(client, first=2)
    assert names(page) == ["ann", "ben"]
    assert page["totalCount"] == 5
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["hasPreviousPage"] is False
    page = await list_users(client, first=2, after=page["pageInfo"]["endCursor"])
    assert names(page) == ["cat", "dan"]
    page = await list_users(client, first=2, after=page["pageInfo"]["endCursor"])
    assert names(page) == ["eve"]
    assert page["pageInfo"]["hasNextPage"] is False

    page = await list_users(client, last=2)
    assert names(page) == ["dan", "eve"]
    assert page["pageInfo"]["hasPreviousPage"] is True
    page = await list_users(client, last=2, before=page["pageInfo"]["startCursor"])
    assert names(page) == ["ben", "cat"]


@pytest.mark.parametrize(
    "variables", [{"first": 101}, {"first": -1}, {"after": "forged"}, {"before": "forged"}]
)
async def test_bad_page_arguments_are_input_errors(
    client: GraphQLClient, variables: dict[str, Any]
) -> None:
    assert codes(await client.errors(USERS, variables)) == ["BAD_USER_INPUT"]


async def test_email_is_visible_to_the_user_and_superusers_only(
    client: GraphQLClient, admin: Person, alice: Person, bob: Person
) -> None:
    def emails(connection: dict[str, Any]) -> dict[str, str | None]:
        return {edge["node"]["username"]: edge["node"]["email"] for edge in connection["edges"]}

    assert emails(await list_users(client)) == {"admin": None, "alice": None, "bob": None}
    assert emails(await list_users(client, alice.token)) == {
        "admin": None, "alice": "alice@example.com", "bob": None,
    }  # fmt: skip
    assert emails(await list_users(client, admin.token)) == {
        "admin": "admin@example.com", "alice": "alice@example.com", "bob": "bob@example.com",
    }  # fmt: skip
    node = "query($id: ID!) { node(id: $id) { ... on User { email } } }"
    assert (await client.execute(node, {"id": alice.id}, token=bob.token))["node"] == {
        "email": None
    }


# -- writing ----------------------------------------------------------------------------


async def test_superuser_creates_a_user(
    client: GraphQLClient, app_database: Database, admin: Person
) -> None:
    new = {"email": " Carol@Example.COM ", "username": "carol", "fullName": "Carol C",
           "password": "correct horse battery", "isSuperuser": False}  # fmt: skip
    result = (await client.execute(CREATE, {"input": new}, token=admin.token))["createUser"]
    assert result["__typename"] == "UserSuccess"
    user = result["user"]
    assert (user["username"], user["email"], user["isActive"], user["version"]) == (
        "carol", "carol@example.com", True, 1,
    )  # fmt: skip
    login = {"email": "carol@example.com", "password": "correct horse battery"}
    assert (await client.execute(LOGIN, {"input": login}))["login"]["__typename"] == "TokenSuccess"


async def test_non_superusers_cannot_create_users(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    new = {"email": "mallory@example.com", "username": "mallory", "isSuperuser": True}
    result = (await client.execute(CREATE, {"input": new}, token=alice.token))["createUser"]
    assert (result["__typename"], result["code"]) == ("ForbiddenError", "FORBIDDEN")
    assert codes(await client.errors(CREATE, {"input": new})) == ["UNAUTHENTICATED"]
    async with app_database.reader() as session:
        assert await UserRepository(session).get_one_by(username="mallory") is None


@pytest.mark.parametrize(
    ("email", "username", "field"),
    [("ALICE@example.com", "someone", "email"), ("someone@example.com", "ALICE", "username")],
)
async def test_create_user_rejects_duplicates_ignoring_case(
    client: GraphQLClient, admin: Person, alice: Person, email: str, username: str, field: str
) -> None:
    new = {"email": email, "username": username}
    result = (await client.execute(CREATE, {"input": new}, token=admin.token))["createUser"]
    assert (result["__typename"], result["code"], field_of(result)) == (
        "AlreadyExistsError", "ALREADY_EXISTS", field,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a b@example.com"}, "email"),
        ({"password": "short"}, "password"),
        ({"username": "  "}, "username"),
    ],
)
async def test_create_user_validates_input(
    client: GraphQLClient, admin: Person, changes: dict[str, str], field: str
) -> None:
    new = {"email": "dan@example.com", "username": "dan"} | changes
    result = (await client.execute(CREATE, {"input": new}, token=admin.token))["createUser"]
    assert (result["__typename"], result["code"], field_of(result)) == (
        "ValidationError", "VALIDATION_FAILED", field,
    )  # fmt: skip


async def test_users_change_their_own_name_and_password(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    changes = {"id": alice.id, "fullName": "Alice Liddell", "password": "a much longer secret"}
    result = (await client.execute(UPDATE, {"input": changes}, token=alice.token))["updateUser"]
    assert result["__typename"] == "UserSuccess"
    assert (result["user"]["fullName"], result["user"]["version"]) == ("Alice Liddell", 2)
    login = {"email": "alice@example.com", "password": "a much longer secret"}
    assert (await client.execute(LOGIN, {"input": login}))["login"]["__typename"] == "TokenSuccess"


@pytest.mark.parametrize(
    "changes", [{"email": "new@example.com"}, {"username": "queen"}, {"isSuperuser": True}]
)
async def test_users_cannot_change_what_only_superusers_may(
    client: GraphQLClient, app_database: Database, alice: Person, changes: dict[str, Any]
) -> None:
    variables = {"input": {"id": alice.id, **changes}}
    result = (await client.execute(UPDATE, variables, token=alice.token))["updateUser"]
    assert (result["__typename"], result["code"]) == ("ForbiddenError", "FORBIDDEN")
    user = await stored(app_database, alice.user.id)
    assert (user.email, user.username, user.is_superuser, user.version) == (
        "alice@example.com", "alice", False, 1,
    )  # fmt: skip


async def test_users_cannot_change_someone_else(
    client: GraphQLClient, app_database: Database, alice: Person, bob: Person
) -> None:
    variables = {"input": {"id": bob.id, "fullName": "Bobby Tables"}}
    result = (await client.execute(UPDATE, variables, token=alice.token))["updateUser"]
    assert result["__typename"] == "ForbiddenError"
    assert (await stored(app_database, bob.user.id)).full_name == "Bob"


@pytest.mark.parametrize(
    ("changes", "typename", "field"),
    [
        ({"email": "BOB@EXAMPLE.COM"}, "AlreadyExistsError", "email"),
        ({"username": "Bob"}, "AlreadyExistsError", "username"),
        ({"email": "nope"}, "ValidationError", "email"),
        ({"password": "too short"}, "ValidationError", "password"),
    ],
)
async def test_update_user_reports_the_field_at_fault(
    client: GraphQLClient, admin: Person, alice: Person, bob: Person,
    changes: dict[str, str], typename: str, field: str,
) -> None:  # fmt: skip
    variables = {"input": {"id": alice.id, **changes}}
    result = (await client.execute(UPDATE, variables, token=admin.token))["updateUser"]
    assert (result["__typename"], field_of(result)) == (typename, field)


async def test_update_user_with_a_stale_version_conflicts(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person
) -> None:
    first = {"id": alice.id, "fullName": "First", "expectedVersion": 1}
    result = (await client.execute(UPDATE, {"input": first}, token=admin.token))["updateUser"]
    assert result["user"]["version"] == 2
    stale = {"id": alice.id, "fullName": "Second", "expectedVersion": 1}
    result = (await client.execute(UPDATE, {"input": stale}, token=admin.token))["updateUser"]
    assert (result["__typename"], result["code"], result["currentVersion"]) == (
        "ConflictError", "CONFLICT", 2,
    )  # fmt: skip
    assert (await stored(app_database, alice.user.id)).full_name == "First"


async def test_update_of_an_unknown_user_is_not_found(client: GraphQLClient, admin: Person) -> None:
    variables = {"input": {"id": to_global_id("User", 999_999), "fullName": "Nobody"}}
    result = (await client.execute(UPDATE, variables, token=admin.token))["updateUser"]
    assert result["__typename"] == "NotFoundError"


async def test_deactivated_users_tokens_stop_working(
    client: GraphQLClient, admin: Person, alice: Person, bob: Person
) -> None:
    variables = {"input": {"id": alice.id, "expectedVersion": 1}}
    result = (await client.execute(DEACTIVATE, variables, token=admin.token))["deactivateUser"]
    assert (result["__typename"], result["user"]["isActive"]) == ("UserSuccess", False)
    rejected = await client.post("{ viewer { id } }", token=alice.token)
    unknown = await client.post("{ viewer { id } }", token="aq_" + "x" * 43)
    assert rejected.status_code == unknown.status_code == 401
    assert without_request_ids(rejected.json()) == without_request_ids(unknown.json())
    assert names(await list_users(client, bob.token)) == ["admin", "bob"]


async def test_deactivate_user_rules(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, bob: Person
) -> None:
    async def deactivate(token: str, **input: Any) -> dict[str, Any]:
        result = await client.execute(DEACTIVATE, {"input": input}, token=token)
        return dict(result["deactivateUser"])

    yourself = await deactivate(admin.token, id=admin.id)
    assert (yourself["__typename"], field_of(yourself)) == ("ValidationError", "id")
    assert (await deactivate(alice.token, id=bob.id))["__typename"] == "ForbiddenError"
    stale = await deactivate(admin.token, id=bob.id, expectedVersion=7)
    assert (stale["__typename"], stale["currentVersion"]) == ("ConflictError", 1)
    for person in (admin, bob):
        assert (await stored(app_database, person.user.id)).is_active is True


async def test_password_hashes_never_reach_the_audit_log(
    client: GraphQLClient, app_database: Database, admin: Person
) -> None:
    new = {"email": "erin@example.com", "username": "erin", "password": "first password!"}
    created = (await client.execute(CREATE, {"input": new}, token=admin.token))["createUser"]
    changes = {"id": created["user"]["id"], "password": "second password!"}
    result = (await client.execute(UPDATE, {"input": changes}, token=admin.token))["updateUser"]
    assert result["__typename"] == "UserSuccess"
    async with app_database.reader() as session:
        erin = await UserRepository(session).get_one_by(username="erin")
    assert erin is not None
    assert erin.password_hash

    entries = await audit_entries(app_database, erin.id)
    assert [(e.action, e.changes["password_hash"]) for e in entries] == [
        ("create", [None, "[redacted]"]),
        ("update", ["[redacted]", "[redacted]"]),
    ]
    everything = json.dumps([e.changes for e in await audit_entries(app_database)])
    for secret in (erin.password_hash, "first password!", "second password!", "$argon2"):
        assert secret not in everything
