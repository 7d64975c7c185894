"""The list of posts over HTTP: filters, orderings, keyset pages and bad arguments."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest

from gql.schema.ids import to_global_id
from gql.settings import Settings
from tests.gql.conftest import Person
from tests.gql.factories import create_post, create_tag, list_posts, succeed, titles
from tests.support.graphql import GraphQLClient, codes


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The application without its background work (the audit sequencer's passes, live
    updates' polls): each pass starts tasks of its own, which the check that a request
    leaves no work behind would count as the request's."""
    return Settings(database_url=database_url, audit_sequencer=False, live_updates=False)


async def test_filters_match_within_what_the_viewer_may_see(
    client: GraphQLClient, alice: Person, bob: Person, admin: Person
) -> None:
    news = (await create_tag(client, admin, name="news"))["id"]
    await create_post(client, alice, title="Growth of 50% this year", tagIds=[news], publish=True)
    await create_post(client, alice, title="Growth of 50 percent", publish=True)
    await create_post(client, bob, title="snake_case names", tagIds=[news], publish=True)
    await create_post(client, bob, title="snakeXcase names", body="Up 50%.", publish=True)
    await create_post(client, alice, title="Draft on growth", tagIds=[news])

    cases: list[tuple[Person | None, dict[str, Any], list[str]]] = [
        (None, {"status": ["DRAFT"]}, []),
        (bob, {"status": ["DRAFT"]}, []),
        (alice, {"status": ["DRAFT"]}, ["Draft on growth"]),
        (admin, {"status": ["DRAFT", "ARCHIVED"]}, ["Draft on growth"]),
        (None, {"authorId": bob.id}, ["snakeXcase names", "snake_case names"]),
        (None, {"tagId": news}, ["snake_case names", "Growth of 50% this year"]),
        (
            alice,
            {"tagId": news},
            ["Draft on growth", "snake_case names", "Growth of 50% this year"],
        ),
        # % and _ are matched literally, in the title or the body, ignoring case.
        (None, {"search": "50%"}, ["snakeXcase names", "Growth of 50% this year"]),
        (None, {"search": "%"}, ["snakeXcase names", "Growth of 50% this year"]),
        (None, {"search": "e_c"}, ["snake_case names"]),
        (None, {"search": "_"}, ["snake_case names"]),
        (None, {"search": "GROWTH"}, ["Growth of 50 percent", "Growth of 50% this year"]),
        (alice, {"search": "growth", "status": ["DRAFT"]}, ["Draft on growth"]),
        (None, {"authorId": alice.id, "tagId": news}, ["Growth of 50% this year"]),
    ]
    for who, filter, expected in cases:
        found = await list_posts(client, who, filter=filter)
        assert titles(found) == expected, (who and who.user.username, filter)
        assert found["totalCount"] == len(expected), filter


async def test_created_after_and_before_are_strict_bounds(
    client: GraphQLClient, alice: Person
) -> None:
    posts = [await create_post(client, alice, title=f"P{i}", publish=True) for i in range(4)]
    at = [post["createdAt"] for post in posts]

    for filter, expected in [
        ({"createdAfter": at[0], "createdBefore": at[3]}, ["P2", "P1"]),
        ({"createdAfter": at[2]}, ["P3"]),
        ({"createdBefore": at[1]}, ["P0"]),
        ({"createdBefore": at[0]}, []),
    ]:
        found = await list_posts(client, filter=filter)
        assert (titles(found), found["totalCount"]) == (expected, len(expected)), filter


async def test_order_by(client: GraphQLClient, alice: Person) -> None:
    for title in ("banana", "apple", "cherry"):
        await create_post(client, alice, title=title, publish=True)
    banana = (await list_posts(client, filter={"search": "banana"}))["edges"][0]["node"]
    await succeed(client, alice, "updatePost", id=banana["id"], body="ripe")

    for order, expected in [
        (None, ["cherry", "apple", "banana"]),
        (["CREATED_AT_ASC"], ["banana", "apple", "cherry"]),
        (["TITLE_ASC"], ["apple", "banana", "cherry"]),
        (["TITLE_DESC"], ["cherry", "banana", "apple"]),
        (["UPDATED_AT_DESC"], ["banana", "cherry", "apple"]),
        (["UPDATED_AT_ASC"], ["apple", "cherry", "banana"]),
    ]:
        assert titles(await list_posts(client, orderBy=order)) == expected, order


async def test_pages_forwards_and_backwards_without_gaps_or_duplicates(
    client: GraphQLClient, alice: Person, bob: Person
) -> None:
    for i in range(1, 8):
        await create_post(client, alice if i % 2 else bob, title=f"P{i}", publish=True)
    await create_post(client, alice, title="Hidden draft")
    everything = [f"P{i}" for i in range(7, 0, -1)]

    seen, after, infos = [], None, []
    while True:
        page = await list_posts(client, first=3, after=after)
        seen += titles(page)
        infos.append(page["pageInfo"])
        assert page["totalCount"] == 7
        assert [e["cursor"] for e in page["edges"]][-1:] == [page["pageInfo"]["endCursor"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == everything
    assert [(i["hasPreviousPage"], i["hasNextPage"]) for i in infos] == [
        (False, True),
        (True, True),
        (True, False),
    ]

    pages, before = [], None
    while True:
        page = await list_posts(client, last=3, before=before)
        pages.append(titles(page))
        assert page["edges"][0]["cursor"] == page["pageInfo"]["startCursor"]
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert pages == [["P3", "P2", "P1"], ["P6", "P5", "P4"], ["P7"]]


async def test_a_cursor_survives_inserts_and_follows_its_ordering(
    client: GraphQLClient, alice: Person
) -> None:
    for title in ("b", "d", "a", "c"):
        await create_post(client, alice, title=title, publish=True)
    page = await list_posts(client, first=2, orderBy=["TITLE_ASC"])
    assert titles(page) == ["a", "b"]

    await create_post(client, alice, title="aa", publish=True)  # before the cursor
    await create_post(client, alice, title="bb", publish=True)  # after it
    after = page["pageInfo"]["endCursor"]
    rest = await list_posts(client, first=10, after=after, orderBy=["TITLE_ASC"])

    assert titles(rest) == ["bb", "c", "d"]
    # A cursor belongs to its ordering: elsewhere it is a clean input error.
    errors = await client.errors(
        "query($a: String) { posts(after: $a) { totalCount } }", {"a": after}
    )
    assert codes(errors) == ["BAD_USER_INPUT"]


TAG_ID = to_global_id("Tag", UUID(int=1))
POST_ID = to_global_id("Post", UUID(int=1))
USER_ID = to_global_id("User", 1)


@pytest.mark.parametrize(
    "query",
    [
        "{ posts(first: -1) { edges { cursor } } }",
        "{ posts(first: 101) { totalCount } }",
        "{ posts(last: -1) { edges { cursor } } }",
        "{ posts(last: 101) { edges { cursor } } }",
        "{ posts(first: 1, last: 1) { edges { cursor } } }",
        '{ posts(after: "nope") { edges { cursor } } }',
        '{ posts(before: "WyJ4IiwgWzFdXQ") { edges { cursor } } }',  # ["x", [1]]
        '{ post(id: "nope") { id } }',
        f'{{ post(id: "{TAG_ID}") {{ id }} }}',
        f'{{ post(id: "{USER_ID}") {{ id }} }}',
        '{ post(slug: "x", id: "x") { id } }',
        '{ node(id: "nope") { id } }',
        '{ nodes(ids: ["nope"]) { id } }',
        f'{{ posts(filter: {{authorId: "{POST_ID}"}}) {{ totalCount }} }}',
        '{ posts(filter: {authorId: "nope"}) { totalCount } }',
        f'{{ posts(filter: {{tagId: "{USER_ID}"}}) {{ totalCount }} }}',
        # Every datetime must say its timezone.
        '{ posts(filter: {createdAfter: "2020-01-01T00:00:00"}) { totalCount } }',
    ],
)
async def test_bad_arguments_are_user_input_errors(
    client: GraphQLClient, alice: Person, query: str
) -> None:
    await create_post(client, alice, publish=True)

    response = await client.post(query, token=alice.token)
    body = response.json()

    assert codes(body["errors"]) == ["BAD_USER_INPUT"], body
    assert "Traceback" not in response.text
    assert "SELECT" not in response.text.upper()


async def test_nodes_with_one_bad_id_fails_and_leaves_no_work_behind(
    client: GraphQLClient, alice: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    running = asyncio.all_tasks()

    errors = await client.errors(
        'query($id: ID!) { nodes(ids: [$id, "nope"]) { id } }', {"id": post["id"]}
    )

    # The lookups of the good ids must not outlive the response: a task still holding
    # a database session after the request ended leaks its connection at shutdown.
    left = [task for task in asyncio.all_tasks() - running if not task.done()]
    await asyncio.gather(*left, return_exceptions=True)  # contain the damage to this test
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert left == []
