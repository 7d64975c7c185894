"""Scalars and string arguments with stricter rules than strawberry's defaults.

Both are checked before any resolver reaches the database, so a value the database
cannot take (a NUL character, a lone surrogate, a date-time that leaves the calendar
once converted to UTC) is a ``BAD_USER_INPUT`` naming the argument, not a database
error masked as ``INTERNAL_SERVER_ERROR``.
"""

from __future__ import annotations

import reprlib
from datetime import UTC, datetime
from typing import NewType, overload

import strawberry

from gql.errors import BadUserInputError
from persistence.validation import text_problem

MAX_FILTER_LENGTH = 200
"""The longest string a query takes to filter or look up rows: as long as the longest
title, slug, key or name it is compared with. Matching more would only cost the
database time (a search also scans bodies, but nobody searches for a paragraph)."""


@overload
def filter_text(value: str, argument: str) -> str: ...
@overload
def filter_text(value: str | None, argument: str) -> str | None: ...
def filter_text(value: str | None, argument: str) -> str | None:
    """``value`` of the query argument ``argument`` (as the client spells it, e.g.
    ``filter.search``), if the database can compare it with text."""
    if value is None:
        return None
    if (problem := text_problem(value)) is not None:
        raise BadUserInputError(f"{argument} {problem}.")
    if len(value) > MAX_FILTER_LENGTH:
        raise BadUserInputError(f"{argument} must be at most {MAX_FILTER_LENGTH} characters.")
    return value


def _parse_datetime(value: object) -> datetime:
    shown = reprlib.repr(value)  # a 1 MB value is not echoed back whole
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise BadUserInputError(f"{shown} is not an ISO 8601 date-time.") from None
    if parsed.utcoffset() is None:
        raise BadUserInputError(
            f"{shown} has no timezone; write it as 2026-05-01T12:00:00Z or with an offset."
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise BadUserInputError(f"{shown} is out of range in UTC.") from None


def rfc3339(value: datetime) -> str:
    """``value`` in UTC, to the microsecond, with ``Z``: ``2026-05-01T12:00:00.000000Z``.
    One fixed width, so results sort as text too; a naive value is UTC already."""
    if value.tzinfo is UTC:  # as the database gives them: ``+00:00`` becomes ``Z``
        return value.isoformat(timespec="microseconds")[:-6] + "Z"
    if value.utcoffset() is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


DateTime = strawberry.scalar(
    name="DateTime",
    description="A date-time, RFC 3339. Results are always UTC, to the microsecond, with "
    "`Z`: `2026-05-01T12:00:00.000000Z`. Arguments take any RFC 3339 date-time with an "
    "offset (`2026-05-01T14:00:00+02:00`).",
    specified_by_url="https://datatracker.ietf.org/doc/html/rfc3339",
    serialize=rfc3339,
    parse_value=_parse_datetime,
)


JSON = NewType("JSON", object)
"""Any JSON value: annotate fields with it; the schema maps it to :data:`JSONScalar`."""

JSONScalar = strawberry.scalar(
    name="JSON",
    description="Any JSON value (ECMA-404): an object, array, string, number, boolean or "
    "null, passed through as is.",
    specified_by_url="https://ecma-international.org/publications-and-standards/standards/ecma-404/",
    serialize=lambda value: value,
    parse_value=lambda value: value,
)
