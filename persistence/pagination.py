"""Keyset pagination over a strict order that ends in the primary key.

A cursor is the sort-key values of a row, with the ordering they belong to, as
URL-safe base64 JSON. It is opaque to clients; a cursor that does not decode, or was
made for another ordering, raises ``InvalidCursorError``. A page never uses OFFSET, so
reading page 1,000 costs what page 1 costs, and rows inserted or deleted meanwhile
cause no duplicates and no gaps.
Ref: https://use-the-index-luke.com/no-offset
"""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement, and_, literal, or_, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from persistence.errors import InvalidCursorError, ValidationError
from persistence.validation import text_problem

T = TypeVar("T")

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class SortKey:
    """One column of an ordering. Keyset columns must be NOT NULL."""

    column: InstrumentedAttribute[Any]
    descending: bool = False

    @property
    def name(self) -> str:
        return self.column.key

    def clause(self, *, reverse: bool = False) -> ColumnElement[Any]:
        return self.column.desc() if self.descending != reverse else self.column.asc()


def asc(column: InstrumentedAttribute[Any]) -> SortKey:
    return SortKey(column)


def desc(column: InstrumentedAttribute[Any]) -> SortKey:
    return SortKey(column, descending=True)


@dataclass(frozen=True)
class Ordering:
    """A strict ordering: the given keys, then the primary key as the tie-breaker."""

    keys: tuple[SortKey, ...]

    @classmethod
    def of(cls, keys: Sequence[SortKey], id_column: InstrumentedAttribute[Any]) -> Ordering:
        for key in keys:
            if key.column.nullable:
                raise ValueError(f"{key.name} is nullable and cannot order a keyset page")
        if not keys or keys[-1].column is not id_column:
            direction = keys[-1].descending if keys else False
            keys = (*keys, SortKey(id_column, descending=direction))
        return cls(tuple(keys))

    @property
    def signature(self) -> str:
        return ",".join(f"{key.name}:{'d' if key.descending else 'a'}" for key in self.keys)

    def clauses(self, *, reverse: bool = False) -> list[ColumnElement[Any]]:
        return list(self._clauses[reverse])

    @cached_property
    def _clauses(self) -> dict[bool, tuple[ColumnElement[Any], ...]]:
        return {r: tuple(key.clause(reverse=r) for key in self.keys) for r in (False, True)}

    def beyond(self, values: Sequence[Any], *, reverse: bool = False) -> ColumnElement[bool]:
        """Rows strictly after ``values`` in this ordering (before, if ``reverse``)."""
        columns = [key.column for key in self.keys]
        # Bind each value with its column's type (UTC normalisation, UUID storage).
        values = [literal(v, type_=c.type) for c, v in zip(columns, values, strict=True)]
        directions = {key.descending != reverse for key in self.keys}
        if len(directions) == 1:
            # One direction: a row-value comparison, which an index on the keys serves.
            descending = directions.pop()
            row, bound = tuple_(*columns), tuple_(*values)
            return row < bound if descending else row > bound
        return or_(
            *(
                and_(
                    *(columns[j] == values[j] for j in range(i)),
                    columns[i] < values[i] if key.descending != reverse else columns[i] > values[i],
                )
                for i, key in enumerate(self.keys)
            )
        )

    def encode(self, item: object) -> str:
        values = [_to_json(getattr(item, key.name)) for key in self.keys]
        raw = json.dumps([self.signature, values], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, cursor: str, *, argument: str = "after") -> list[Any]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            signature, values = json.loads(raw)
            if signature != self.signature or len(values) != len(self.keys):
                raise InvalidCursorError(argument)
            return [_from_json(key, value) for key, value in zip(self.keys, values, strict=True)]
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            # Anything a forged cursor can make the decoding raise: bad base64 or JSON
            # (binascii.Error and UnicodeError are ValueErrors), JSON nested deeper than
            # the parser recurses, a date-time outside the calendar once in UTC.
            raise InvalidCursorError(argument) from exc


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return value.hex
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _from_json(key: SortKey, value: Any) -> Any:
    python_type = key.column.type.python_type
    if python_type in (datetime, UUID) and not isinstance(value, str):
        raise ValueError(f"cursor value for {key.name} is not a string")
    if isinstance(value, str) and text_problem(value) is not None:
        raise ValueError(f"cursor value for {key.name} is not text a database can compare")
    if python_type is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive datetime in cursor")
        return parsed.astimezone(UTC)
    if python_type is UUID:
        return UUID(hex=value)
    if issubclass(python_type, enum.Enum):
        return python_type(value)
    # bool is an int in Python; JSON keeps them apart, and so does a cursor.
    if isinstance(value, bool) != (python_type is bool) or not isinstance(value, python_type):
        raise ValueError(f"cursor value for {key.name} has the wrong type")
    return value


@dataclass(frozen=True)
class PageRequest:
    """``first``/``after`` pages forwards, ``last``/``before`` backwards."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def __post_init__(self) -> None:
        if self.first is not None and self.last is not None:
            raise ValidationError("last", "Use either first or last, not both.")
        for name in ("first", "last"):
            size = getattr(self, name)
            if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
                raise ValidationError(name, f"{name} must be between 0 and {MAX_PAGE_SIZE}.")

    @property
    def backwards(self) -> bool:
        return self.last is not None or (self.before is not None and self.first is None)

    def size(self, default: int) -> int:
        size = self.last if self.backwards else self.first
        return default if size is None else size


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    ordering: Ordering
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None = field(default=None)

    def cursor(self, item: T) -> str:
        return self.ordering.encode(item)

    @property
    def start_cursor(self) -> str | None:
        return self.cursor(self.items[0]) if self.items else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursor(self.items[-1]) if self.items else None
