"""N+1 guards: a list with its authors, tags and nested pages costs a fixed number of
SQL statements, whatever its length."""

from __future__ import annotations

import re

from persistence.engine import Database
from tests.gql.factories import add_users, seed_blog
from tests.support.graphql import GraphQLClient
from tests.support.statements import count_statements

POSTS = """query($n: Int!) { posts(first: $n) { edges { node {
  title createdBy { username } updatedBy { username } tags { name }
  comments(first: 3) { edges { node { body createdBy { username } } } } } } } }"""

USERS = """query($n: Int!) { users(first: $n) { edges { node {
  posts(first: 3) { edges { node { tags { name } } } } } } } }"""

# Reads run in autocommit: no statement may open or close a transaction.
TRANSACTION = re.compile(r"\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION)\b", re.IGNORECASE)


async def statements_for(
    client: GraphQLClient, database: Database, query: str, n: int
) -> list[str]:
    with count_statements(database) as statements:
        data = await client.execute(query, {"n": n})
    field = next(iter(data))
    assert len(data[field]["edges"]) == n
    return list(statements)


async def test_a_page_of_posts_costs_the_same_for_10_and_100(
    client: GraphQLClient, app_database: Database
) -> None:
    authors = await add_users(app_database, 4, "author")
    commenters = await add_users(app_database, 2, "reader")
    await seed_blog(app_database, authors, commenters, posts_per_author=30)
    await client.execute(POSTS, {"n": 1})  # connect the pool outside the count

    small = await statements_for(client, app_database, POSTS, 10)
    large = await statements_for(client, app_database, POSTS, 100)

    print(f"posts(first: 10): {len(small)} statements; posts(first: 100): {len(large)}")
    # The page, its authors, its tags, the comment pages, the commenters.
    assert len(small) == len(large) == 5, "\n\n".join(large)
    assert not [s for s in small + large if TRANSACTION.match(s)]


async def test_a_page_of_users_with_their_posts_costs_the_same_for_5_and_50(
    client: GraphQLClient, app_database: Database
) -> None:
    authors = await add_users(app_database, 50, "writer")
    await seed_blog(app_database, authors, authors[:2], posts_per_author=4, comments_per_post=0)
    await client.execute(USERS, {"n": 1})

    small = await statements_for(client, app_database, USERS, 5)
    large = await statements_for(client, app_database, USERS, 50)

    print(f"users(first: 5): {len(small)} statements; users(first: 50): {len(large)}")
    # The page of users, their pages of posts, the posts' tags.
    assert len(small) == len(large) == 3, "\n\n".join(large)
    assert not [s for s in small + large if TRANSACTION.match(s)]
