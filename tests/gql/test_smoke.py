from __future__ import annotations

from tests.gql.conftest import Person
from tests.support.graphql import GraphQLClient


async def test_viewer_and_create_post(client: GraphQLClient, alice: Person) -> None:
    data = await client.execute("{ viewer { id username email } }", token=alice.token)
    assert data["viewer"]["username"] == "alice"
    data = await client.execute(
        """mutation($input: CreatePostInput!) { createPost(input: $input) {
            __typename ... on PostSuccess { post { id title slug status version
              createdBy { username } updatedBy { username } tags { name }
              comments(first: 3) { totalCount edges { node { id } } } } }
            ... on Error { message code } } }""",
        {"input": {"title": "Hello world", "body": "First"}},
        token=alice.token,
    )
    post = data["createPost"]["post"]
    assert post["slug"] == "hello-world"
    assert post["createdBy"]["username"] == "alice"
