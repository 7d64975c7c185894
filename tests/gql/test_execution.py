"""The lean execution path answers exactly as strawberry's own: data, errors, paths."""

from __future__ import annotations

import asyncio
import gc
import warnings
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from gql.engine.execution import lean_execution
from gql.engine.lean import LEAN, call_lean


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


def eventual_friend(row: Row, _context: Any, _type_name: str) -> Any:
    """An awaitable, as a loader's answer is before its batch ran."""
    return asyncio.sleep(0, result=row.friend)


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

    @strawberry.field(metadata={LEAN: eventual_friend})
    async def later(self, root: strawberry.Parent[Row], info: strawberry.Info) -> Thing | None:
        friend: Any = await call_lean(eventual_friend, root, info)
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
    "{ things { __typename id kind: __typename } }",
    "{ things { id name @include(if: false) color @skip(if: true) friend { id } } }",
    "{ things { id later { id color later { id } } } }",
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
async def test_lean_execution_answers_like_strawberry(query: str) -> None:
    plain, lean = _schemas()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a coroutine never awaited
        expected, answered = await plain.execute(query), await lean.execute(query)
        gc.collect()
    assert answered.data == expected.data
    errors = [(e.message, e.path) for e in answered.errors or []]
    assert errors == [(e.message, e.path) for e in expected.errors or []]


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


def test_a_selection_that_reads_rows_is_completed_in_one_pass() -> None:
    _, lean = _schemas()
    executed: list[str] = []
    context_class = lean.execution_context_class

    class Counting(context_class):  # type: ignore[misc,valid-type]
        def execute_field(self, parent_type: Any, *args: Any) -> Any:
            executed.append(parent_type.name)
            return super().execute_field(parent_type, *args)

    lean.execution_context_class = Counting
    data, errors = _answer(lean, "{ things { id color friend { id color } } }")
    assert errors == []
    assert data["things"][1] == {"id": 2, "color": "BLUE", "friend": {"id": 4, "color": "RED"}}
    assert executed == ["Query"]  # only the root field; the plan completed the rest
