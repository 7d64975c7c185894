"""Checks every backend should make the same way, applied to every row written.

SQLite does not enforce ``VARCHAR(n)`` and PostgreSQL reports an over-long value
without naming the column; neither can store a NUL character or a lone UTF-16
surrogate in text (JSON lets a client send one as ``"\\ud800"``); and a naive datetime
would be stored as if it were UTC. So values are checked before they reach the
database, with the field named.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import String, Table, inspect

from persistence.errors import ValidationError
from persistence.history import added_values


def text_problem(value: str) -> str | None:
    """Why a database cannot store or compare ``value`` as text, if it cannot: the end
    of a sentence naming the field, e.g. ``"must not contain NUL characters"``."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if value.isascii():  # a flag of the string: no surrogates, no copy made to find out
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    return None


def check_values(table: Table, values: Mapping[str, Any]) -> None:
    """Check the values of a row of ``table`` about to be written."""
    _check(values, _lengths(table))


def check_rows(table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
    """Check the values of rows of ``table`` about to be written, in order."""
    lengths = _lengths(table)
    for values in rows:
        _check(values, lengths)


def _check(values: Mapping[str, Any], lengths: Mapping[str, int]) -> None:
    for key, value in values.items():
        if not isinstance(value, str):
            if isinstance(value, datetime) and value.utcoffset() is None:
                raise ValidationError(key, f"{key} must include a timezone.")
            continue
        if (problem := text_problem(value)) is not None:
            raise ValidationError(key, f"{key} {problem}.")
        length = lengths.get(key)
        if length is not None and len(value) > length:
            raise ValidationError(key, f"{key} must be at most {length} characters.")


@cache
def _lengths(table: Table) -> dict[str, int]:
    """The longest text each ``String(n)`` column of ``table`` takes, by key."""
    return {
        str(column.key): column.type.length
        for column in table.columns
        if isinstance(column.type, String) and column.type.length is not None
    }


def check_changed(obj: object) -> None:
    """Check the values an ORM flush is about to write for ``obj``."""
    check_values(inspect(obj).mapper.local_table, added_values(obj))
