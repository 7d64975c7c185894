"""Feature flags over HTTP: management by superusers, evaluation for everyone."""

from __future__ import annotations

from typing import Any

import pytest

from domain.feature_flags import bucket
from gql.schema.ids import to_global_id
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import FeatureFlag, FlagOverride
from persistence.repositories.feature_flag import FeatureFlagRepository, FlagOverrideRepository
from persistence.unit_of_work import UnitOfWork
from tests.gql.conftest import Person, make_person
from tests.support.audit import audit_entries
from tests.support.graphql import GraphQLClient, codes

FLAG = "featureFlag { id key name description enabled rolloutPercentage version }"
ERRORS = {
    "ValidationError": "invalid: field",  # aliased: the two `field`s differ in nullability
    "AlreadyExistsError": "taken: field",
    "ConflictError": "currentVersion",
}


def mutation(name: str, input_type: str, success: str, *errors: str) -> str:
    cases = " ".join(f"... on {error} {{ {ERRORS[error]} }}" for error in errors)
    return f"""mutation($input: {input_type}!) {{ {name}(input: $input) {{
      __typename {success} ... on Error {{ code message }} {cases} }} }}"""


SUCCESS = f"... on FeatureFlagSuccess {{ {FLAG} }}"
CREATE = mutation("createFeatureFlag", "CreateFeatureFlagInput", SUCCESS,
                  "ValidationError", "AlreadyExistsError")  # fmt: skip
UPDATE = mutation("updateFeatureFlag", "UpdateFeatureFlagInput", SUCCESS,
                  "ValidationError", "ConflictError")  # fmt: skip
DELETE = mutation("deleteFeatureFlag", "DeleteFeatureFlagInput",
                  "... on DeleteFeatureFlagSuccess { deletedId }", "ConflictError")  # fmt: skip
SET_OVERRIDE = mutation("setFlagOverride", "SetFlagOverrideInput",
                        "... on FlagOverrideSuccess { flagOverride { id enabled } }")  # fmt: skip
REMOVE_OVERRIDE = mutation("removeFlagOverride", "RemoveFlagOverrideInput",
                           "... on RemoveFlagOverrideSuccess { removed }")  # fmt: skip
IS_ENABLED = "query($key: String!) { featureFlag(key: $key) { isEnabled } }"
FLAGS = "{ featureFlags { totalCount edges { node { key } } } }"


async def add_flag(database: Database, key: str, *, enabled: bool = True, rollout: int = 100,
                   ) -> FeatureFlag:  # fmt: skip
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        return await FeatureFlagRepository(uow.session).add(
            FeatureFlag(key=key, name=key.title(), enabled=enabled, rollout_percentage=rollout)
        )


def flag_id(flag: FeatureFlag) -> str:
    return to_global_id("FeatureFlag", flag.id)


async def call(client: GraphQLClient, document: str, token: str | None, **input: Any,
               ) -> dict[str, Any]:  # fmt: skip
    data = await client.execute(document, {"input": input}, token=token)
    [result] = data.values()
    return dict(result)


async def is_enabled(client: GraphQLClient, key: str, token: str | None = None) -> bool:
    flag = (await client.execute(IS_ENABLED, {"key": key}, token=token))["featureFlag"]
    return bool(flag["isEnabled"])


async def stored_flag(database: Database, key: str) -> FeatureFlag | None:
    async with database.reader() as session:
        return await FeatureFlagRepository(session).find_by_key(key)


# -- management ----------------------------------------------------------------------------


async def test_superusers_create_update_and_delete_flags(
    client: GraphQLClient, app_database: Database, admin: Person
) -> None:
    new = {"key": "new.checkout_v2-beta", "name": "New checkout", "rolloutPercentage": 25}
    created = await call(client, CREATE, admin.token, **new)
    assert created["__typename"] == "FeatureFlagSuccess"
    flag = created["featureFlag"]
    assert (flag["key"], flag["enabled"], flag["rolloutPercentage"], flag["version"]) == (
        "new.checkout_v2-beta", False, 25, 1,
    )  # fmt: skip
    changes = {"id": flag["id"], "enabled": True, "rolloutPercentage": 0, "expectedVersion": 1}
    updated = await call(client, UPDATE, admin.token, **changes)
    flag = updated["featureFlag"]
    assert (flag["enabled"], flag["rolloutPercentage"], flag["version"]) == (True, 0, 2)
    stale = await call(client, UPDATE, admin.token, id=flag["id"], name="x", expectedVersion=1)
    assert (stale["__typename"], stale["currentVersion"]) == ("ConflictError", 2)
    stale = await call(client, DELETE, admin.token, id=flag["id"], expectedVersion=1)
    assert stale["__typename"] == "ConflictError"
    deleted = await call(client, DELETE, admin.token, id=flag["id"], expectedVersion=2)
    assert deleted == {"__typename": "DeleteFeatureFlagSuccess", "deletedId": flag["id"]}
    assert await stored_flag(app_database, "new.checkout_v2-beta") is None
    again = await call(client, DELETE, admin.token, id=flag["id"])
    assert again["__typename"] == "NotFoundError"


async def test_only_superusers_manage_flags(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    flag = await add_flag(app_database, "managed", enabled=False)
    attempts: list[tuple[str, dict[str, Any]]] = [
        (CREATE, {"key": "sneaky", "name": "Sneaky"}),
        (UPDATE, {"id": flag_id(flag), "enabled": True}),
        (DELETE, {"id": flag_id(flag)}),
        (SET_OVERRIDE, {"flagId": flag_id(flag), "userId": alice.id, "enabled": True}),
        (REMOVE_OVERRIDE, {"flagId": flag_id(flag), "userId": alice.id}),
    ]
    for document, input in attempts:
        result = await call(client, document, alice.token, **input)
        assert (result["__typename"], result["code"]) == ("ForbiddenError", "FORBIDDEN")
        assert codes(await client.errors(document, {"input": input})) == ["UNAUTHENTICATED"]
    assert await stored_flag(app_database, "sneaky") is None
    unchanged = await stored_flag(app_database, "managed")
    assert unchanged is not None
    assert (unchanged.enabled, unchanged.version) == (False, 1)
    assert await is_enabled(client, "managed", alice.token) is False


@pytest.mark.parametrize(
    "key", ["a", "Upper", "1st", "_x", "with space", "ümlaut", "a" * 65, "dash-ok-but-!"]
)
async def test_flag_keys_must_match_the_format(
    client: GraphQLClient, admin: Person, key: str
) -> None:
    result = await call(client, CREATE, admin.token, key=key, name="Bad")
    assert (result["__typename"], result["invalid"]) == ("ValidationError", "key")


async def test_the_shortest_and_longest_keys_are_valid(
    client: GraphQLClient, admin: Person
) -> None:
    for key in ("ab", "a" + "z9_.-" * 12 + "abc"):
        assert len(key) in (2, 64)
        result = await call(client, CREATE, admin.token, key=key, name="Edge")
        assert result["__typename"] == "FeatureFlagSuccess"


async def test_duplicate_keys_already_exist(
    client: GraphQLClient, app_database: Database, admin: Person
) -> None:
    await add_flag(app_database, "dup")
    result = await call(client, CREATE, admin.token, key="dup", name="Again")
    assert (result["__typename"], result["code"], result["taken"]) == (
        "AlreadyExistsError", "ALREADY_EXISTS", "key",
    )  # fmt: skip


@pytest.mark.parametrize("percentage", [-1, 101, 1000])
async def test_rollout_percentage_must_be_0_to_100(
    client: GraphQLClient, app_database: Database, admin: Person, percentage: int
) -> None:
    created = await call(client, CREATE, admin.token, key="pct", name="P",
                         rolloutPercentage=percentage)  # fmt: skip
    assert (created["__typename"], created["invalid"]) == ("ValidationError", "rolloutPercentage")
    flag = await add_flag(app_database, "pct2", rollout=50)
    updated = await call(client, UPDATE, admin.token, id=flag_id(flag),
                         rolloutPercentage=percentage)  # fmt: skip
    assert (updated["__typename"], updated["invalid"]) == ("ValidationError", "rolloutPercentage")
    stored = await stored_flag(app_database, "pct2")
    assert stored is not None
    assert stored.rollout_percentage == 50


# -- evaluation ------------------------------------------------------------------------------


async def test_an_override_wins_until_it_is_removed(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, bob: Person
) -> None:
    await add_flag(app_database, "beta", enabled=False)
    flag = await stored_flag(app_database, "beta")
    assert flag is not None
    on = {"flagId": flag_id(flag), "userId": alice.id, "enabled": True}
    set_on = await call(client, SET_OVERRIDE, admin.token, **on)
    assert set_on["flagOverride"]["enabled"] is True
    assert await is_enabled(client, "beta", alice.token) is True
    assert await is_enabled(client, "beta", bob.token) is False

    await call(client, UPDATE, admin.token, id=flag_id(flag), enabled=True)
    off = {**on, "enabled": False}
    set_off = await call(client, SET_OVERRIDE, admin.token, **off)
    assert set_off["flagOverride"]["id"] == set_on["flagOverride"]["id"]  # changed, not added
    assert set_off["flagOverride"]["enabled"] is False
    assert await is_enabled(client, "beta", alice.token) is False
    assert await is_enabled(client, "beta", bob.token) is True

    pair = {"flagId": flag_id(flag), "userId": alice.id}
    assert await call(client, REMOVE_OVERRIDE, admin.token, **pair) == {
        "__typename": "RemoveFlagOverrideSuccess", "removed": True,
    }  # fmt: skip
    assert await is_enabled(client, "beta", alice.token) is True
    again = await call(client, REMOVE_OVERRIDE, admin.token, **pair)
    assert again["removed"] is False


async def test_a_disabled_flag_is_off_for_everyone(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person
) -> None:
    await add_flag(app_database, "dark", enabled=False, rollout=100)
    for token in (None, alice.token, admin.token):
        assert await is_enabled(client, "dark", token) is False


@pytest.mark.parametrize(("enabled", "rollout", "expected"),
                         [(True, 100, True), (True, 99, False), (False, 100, False)])  # fmt: skip
async def test_anonymous_viewers_get_only_fully_rolled_out_flags(
    client: GraphQLClient, app_database: Database, enabled: bool, rollout: int, expected: bool
) -> None:
    await add_flag(app_database, "anon", enabled=enabled, rollout=rollout)
    assert await is_enabled(client, "anon") is expected


async def test_rollout_buckets_are_deterministic(
    client: GraphQLClient, app_database: Database
) -> None:
    await add_flag(app_database, "half", rollout=50)
    people = [await make_person(app_database, f"user{n}") for n in range(10)]
    expected = {p.user.username: bucket("half", p.user.id) < 50 for p in people}
    assert set(expected.values()) == {True, False}, "the sample must have users on both sides"
    for _ in range(2):
        seen = {p.user.username: await is_enabled(client, "half", p.token) for p in people}
        assert seen == expected


async def test_unknown_flags_are_null(client: GraphQLClient) -> None:
    assert (await client.execute(IS_ENABLED, {"key": "nope"}))["featureFlag"] is None


# -- reading flags and overrides ---------------------------------------------------------------


async def test_only_superusers_list_flags(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person
) -> None:
    for key in ("zeta", "alpha", "mid"):
        await add_flag(app_database, key)
    flags = (await client.execute(FLAGS, token=admin.token))["featureFlags"]
    assert [edge["node"]["key"] for edge in flags["edges"]] == ["alpha", "mid", "zeta"]
    assert flags["totalCount"] == 3
    assert codes(await client.errors(FLAGS, token=alice.token)) == ["FORBIDDEN"]
    assert codes(await client.errors(FLAGS)) == ["UNAUTHENTICATED"]


async def test_only_superusers_read_overrides(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person
) -> None:
    flag = await add_flag(app_database, "ovr")
    await call(client, SET_OVERRIDE, admin.token, flagId=flag_id(flag), userId=alice.id,
               enabled=False)  # fmt: skip
    query = """{ featureFlag(key: "ovr") { key overrides { totalCount
                 edges { node { enabled user { username } flag { key } } } } } }"""
    overrides = (await client.execute(query, token=admin.token))["featureFlag"]["overrides"]
    assert overrides["totalCount"] == 1
    assert overrides["edges"][0]["node"] == {
        "enabled": False, "user": {"username": "alice"}, "flag": {"key": "ovr"},
    }  # fmt: skip
    errors = await client.errors(query, token=alice.token)
    assert codes(errors) == ["FORBIDDEN"]
    assert errors[0]["path"] == ["featureFlag", "overrides"]
    assert codes(await client.errors(query)) == ["UNAUTHENTICATED"]


async def test_deleting_a_flag_audits_the_removal_of_its_overrides(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, bob: Person
) -> None:
    flag = await add_flag(app_database, "doomed")
    for person in (alice, bob):
        await call(client, SET_OVERRIDE, admin.token, flagId=flag_id(flag), userId=person.id,
                   enabled=True)  # fmt: skip
    async with app_database.reader() as session:
        overrides = await FlagOverrideRepository(session).list(flag_id=flag.id)
    assert len(overrides) == 2

    deleted = await call(client, DELETE, admin.token, id=flag_id(flag))
    assert deleted["__typename"] == "DeleteFeatureFlagSuccess"
    async with app_database.reader() as session:
        assert await FlagOverrideRepository(session).count(FlagOverride.flag_id == flag.id) == 0
    for override in overrides:
        entries = await audit_entries(app_database, override.id)
        assert [(e.action, e.actor_id) for e in entries] == [
            ("create", admin.user.id), ("delete", admin.user.id),
        ]  # fmt: skip
        assert entries[-1].changes["enabled"] == [True, None]
    [*_, removal] = await audit_entries(app_database, flag.id)
    assert (removal.action, removal.changes["key"]) == ("delete", ["doomed", None])
