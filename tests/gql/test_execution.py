"""The lean execution path answers exactly as strawberry's own: data, errors, paths."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from gql.execution import LEAN, call_lean, lean_execution


@strawberry.enum
class Color(Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Row:
    id: int
    name: str | None
    color: Color
    friend: Row | None = None


def shout(row: Row, _context: Any, type_name: str) -> str:
    if row.name is None:
        raise ValueError("nameless")
    return f"{type_name}:{row.name.upper()}"


def best_friend(row: Row, _context: Any, _type_name: str) -> Row | None:
    return row.friend


@strawberry.type
class Thing:
    id: int
    name: str
    color: Color

    @strawberry.field(metadata={LEAN: shout})
    def loud(self, root: strawberry.Parent[Row], info: strawberry.Info) -> str:
        STRAWBERRY_CALLS.append("loud")
        return str(call_lean(shout, root, info))

    @strawberry.field(metadata={LEAN: best_friend})
    def friend(self, root: strawberry.Parent[Row], info: strawberry.Info) -> Thing | None:
        friend: Any = call_lean(best_friend, root, info)
        return friend

    @strawberry.field
    def greeting(self, root: strawberry.Parent[Row], punctuation: str = "!") -> str:
        return f"hello {root.name}{punctuation}"


STRAWBERRY_CALLS: list[str] = []
ROWS = [
    Row(1, "ada", Color.RED, friend=Row(3, "lin", Color.BLUE)),
    Row(2, None, Color.BLUE, friend=Row(4, None, Color.RED)),
]


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        rows: Any = ROWS
        return rows


QUERIES = [
    "{ things { id name color } }",
    "{ things { id loud } }",
    "{ things { id color friend { id name loud color } } }",
    '{ things { id greeting(punctuation: "?") friend { greeting } } }',
    "{ things { ... on Thing { id alias: color } } }",
]


def _schemas(
    extensions: list[type[SchemaExtension]] | None = None,
) -> tuple[strawberry.Schema, strawberry.Schema]:
    plain = strawberry.Schema(Query, extensions=extensions or [])
    lean = strawberry.Schema(Query, extensions=extensions or [])
    lean.execution_context_class = lean_execution(lean)
    return plain, lean


def _answer(schema: strawberry.Schema, query: str) -> tuple[Any, list[tuple[str, Any]]]:
    result = schema.execute_sync(query)
    return result.data, [(e.message, e.path) for e in result.errors or []]


@pytest.mark.parametrize("query", QUERIES)
def test_lean_execution_answers_like_strawberry(query: str) -> None:
    plain, lean = _schemas()
    assert _answer(lean, query) == _answer(plain, query)


@pytest.mark.parametrize(
    ("query", "error", "second"),
    [
        ("{ things { name } }",
         ("Cannot return null for non-nullable field Thing.name.", ["things", 1, "name"]),
         None),
        ("{ things { loud } }", ("nameless", ["things", 1, "loud"]), None),
        ("{ things { friend { loud } } }",
         ("nameless", ["things", 1, "friend", "loud"]),
         {"friend": None}),
    ],
)  # fmt: skip
def test_errors_in_leaves_and_lean_fields_are_located(query: str, error: Any, second: Any) -> None:
    _, lean = _schemas()
    data, errors = _answer(lean, query)
    assert errors == [error]
    assert data["things"][1] == second


def test_lean_fields_skip_strawberrys_resolver_unless_they_fail() -> None:
    plain, lean = _schemas()
    STRAWBERRY_CALLS.clear()
    lean.execute_sync("{ things { loud } }")
    assert STRAWBERRY_CALLS == ["loud"]  # the second row's, run again the ordinary way
    STRAWBERRY_CALLS.clear()
    plain.execute_sync("{ things { loud } }")
    assert STRAWBERRY_CALLS == ["loud", "loud"]


def test_an_extension_that_wraps_resolvers_still_sees_every_field() -> None:
    seen: list[str] = []

    class Recorder(SchemaExtension):
        def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(info.field_name)
            return _next(root, info, *args, **kwargs)

    _, lean = _schemas([Recorder])
    assert lean.execute_sync("{ things { id color } }").errors is None
    assert seen == ["things", "id", "color", "id", "color"]
