"""Production mode teaches nothing of the schema: no error message names a type, field,
argument, enum value or input field that the request did not name itself.

Every validation rule of graphql-core that suggests a name or quotes the schema gets
documents here, and so do the coercion of variables and literals, against a real
``auditql serve`` in production mode on PostgreSQL. The check is independent of the
server's own: every word of every message is looked up among the names of the
committed ``schema.graphql``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLEnumType, GraphQLInputObjectType, Lexer, Source, TokenKind, build_schema
from graphql.type import GraphQLInterfaceType, GraphQLObjectType, is_introspection_type

from tests.gql.conftest import LiveServer, Scene

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

SDL = Path(__file__).resolve().parents[2] / "schema.graphql"

# rule -> documents (with variables) that make it speak
CASES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "FieldsOnCorrectType": [
        ("{ posts { edges { node { titel } } } }", {}),
        ("{ posts { totalCont } }", {}),
        ('{ node(id: "x") { titel } }', {}),  # on an interface
        ('{ node(id: "x") { ... on Post { auther { id } } } }', {}),
    ],
    "KnownArgumentNames": [
        ("{ posts(frist: 1) { totalCount } }", {}),
        ("{ posts { edges { node { comments(frist: 2) { totalCount } } } } }", {}),
        ("{ posts @skip(iff: true) { totalCount } }", {}),
    ],
    "KnownTypeNames": [
        ("{ posts { edges { node { ... on Pots { id } } } } }", {}),
        ("query($f: PostFiltre) { posts(filter: $f) { totalCount } }", {}),
        ("fragment F on Usr { id } { viewer { ...F } }", {}),
    ],
    "ScalarLeafs": [
        ("{ posts }", {}),
        ("{ viewer }", {}),
        ("{ posts { totalCount { x } } }", {}),
    ],
    "ValuesOfCorrectType": [
        ("{ posts(orderBy: [TITLE_AS]) { totalCount } }", {}),
        ("{ posts(filter: {status: [DRAF]}) { totalCount } }", {}),
        ('mutation { createPost(input: {titel: "x"}) { __typename } }', {}),
        ("mutation { createPost(input: {}) { __typename } }", {}),
        ('{ posts(first: "x") { totalCount } }', {}),
        ("{ posts(filter: {search: 5}) { totalCount } }", {}),
        ('{ posts(filter: "x") { totalCount } }', {}),
        ("{ posts(first: 1.5) { totalCount } }", {}),
        ('{ posts(filter: {createdAfter: 5}) { totalCount } }', {}),
    ],
    "ProvidedRequiredArguments": [
        ("mutation { createPost { __typename } }", {}),
        ("{ post { id } }", {}),
        ("{ posts @include { totalCount } }", {}),
    ],
    "VariablesInAllowedPosition": [
        ("query($x: String) { post(id: $x) { id } }", {"x": "a"}),
        ("query($n: Float) { posts(first: $n) { totalCount } }", {"n": 1}),
    ],
    "OverlappingFieldsCanBeMerged": [
        ('{ node(id: "x") { ... on Post { a: title } ... on Tag { a: color } '
         '... on User { a: isActive } } }', {}),
        ("{ viewer { a: id a: username } }", {}),
    ],
    "PossibleFragmentSpreads": [
        ("{ posts { ... on Post { id } } }", {}),
        ("fragment F on Post { id } { viewer { ...F } }", {}),
    ],
    "variable coercion": [
        ("query($f: PostFilter) { posts(filter: $f) { totalCount } }", {"f": {"statuss": "x"}}),
        ("query($o: [PostOrder!]) { posts(orderBy: $o) { totalCount } }", {"o": ["TITLE_AS"]}),
        ("mutation($i: CreatePostInput!) { createPost(input: $i) { __typename } }",
         {"i": {"titel": "x"}}),
        ("mutation($i: CreatePostInput!) { createPost(input: $i) { __typename } }",
         {"i": {"title": 5}}),
        ("mutation($i: CreatePostInput!) { createPost(input: $i) { __typename } }", {}),
        ("query($f: PostFilter) { posts(filter: $f) { totalCount } }", {"f": "x"}),
        ("query($f: PostFilter) { posts(filter: $f) { totalCount } }",
         {"f": {"createdAfter": "yesterday"}}),
    ],
    "arguments a resolver checks": [
        ("query($a: ID) { posts(filter: {authorId: $a}) { totalCount } }", {"a": "VGFnOjE"}),
        ('{ post(id: "VGFnOjE") { id } }', {}),
    ],
}  # fmt: skip

# English words of the messages that happen to be names in this schema as well (the
# nouns of the domain among them: "authorId is not the id of a user.").
ENGLISH = {"at", "if", "include", "field", "id", "value", "name", "key", "code", "message",
           "since", "new", "user", "post", "tag", "comment", "flag"}  # fmt: skip


def schema_names() -> set[str]:
    schema = build_schema(SDL.read_text())
    roots = {schema.query_type, schema.mutation_type, schema.subscription_type}
    names: set[str] = set()
    for type_ in schema.type_map.values():
        if is_introspection_type(type_) or type_ in roots:
            continue
        names.add(type_.name)
        if isinstance(type_, GraphQLEnumType):
            names.update(type_.values)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for name, field in type_.fields.items():
                names.add(name)
                names.update(field.args)
        if isinstance(type_, GraphQLInputObjectType):
            names.update(type_.fields)
    for directive in schema.directives:
        names.update((directive.name, *directive.args))
    return names


def said(document: str, variables: Any) -> set[str]:
    """Every word the client sent."""
    words: set[str] = set()
    lexer = Lexer(Source(document))
    while (token := lexer.advance()).kind is not TokenKind.EOF:
        words.update(re.findall(r"\w+", token.value or ""))
    words.update(re.findall(r"\w+", repr(variables)))
    return words


@pytest.fixture(scope="module")
def names() -> set[str]:
    return schema_names()


@pytest.mark.parametrize("rule", sorted(CASES))
async def test_no_message_names_what_the_request_did_not(
    live_server: LiveServer, scene: Scene, names: set[str], rule: str
) -> None:
    leaks: list[tuple[str, str, set[str]]] = []
    with live_server() as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            for document, variables in CASES[rule]:
                response = await http.post(
                    "/graphql", json={"query": document, "variables": variables},
                    headers=scene.bearer,
                )  # fmt: skip
                errors = response.json()["errors"]
                assert errors, document
                for error in errors:
                    assert error["extensions"]["code"] in (
                        "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"
                    ), error  # fmt: skip
                    words = set(re.findall(r"\w+", error["message"]))
                    leaked = (words & names) - said(document, variables) - ENGLISH
                    if leaked:
                        leaks.append((document, error["message"], leaked))
    assert leaks == []


async def test_messages_stay_readable(live_server: LiveServer, scene: Scene) -> None:
    """What the client named is still said; the limits still explain themselves."""
    cases = {
        "{ posts(frist: 1) { totalCount } }": "Unknown argument 'frist'",
        "{ posts }": "Field 'posts' must have a selection of subfields.",
        "{ posts(orderBy: [TITLE_AS]) { totalCount } }": "Value 'TITLE_AS' does not exist",
        "{ posts { edges { node { ... on Pots { id } } } } }": "Unknown type 'Pots'.",
        "mutation { createPost { __typename } }": "'createPost' is missing a required argument",
        "{ " + " ".join("__typename" for _ in range(2100)) + " }": "2000 tokens",
        "{ tags { " + " ".join(f"a{n}: totalCount" for n in range(16)) + " } }":
            "16 aliases found. Allowed: 15",
    }  # fmt: skip
    with live_server() as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            for document, expected in cases.items():
                response = await http.post("/graphql", json={"query": document})
                [error] = response.json()["errors"]
                assert expected in error["message"], (document, error)
