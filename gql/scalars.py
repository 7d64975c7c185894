"""Scalars with stricter rules than strawberry's defaults."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gql.errors import BadUserInputError


def _parse_datetime(value: object) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise BadUserInputError(f"{value!r} is not an ISO 8601 date-time.") from None
    if parsed.utcoffset() is None:
        raise BadUserInputError(
            f"{value!r} has no timezone; write it as 2026-05-01T12:00:00Z or with an offset."
        )
    return parsed


DateTime = strawberry.scalar(
    name="DateTime",
    description="An ISO 8601 date-time with a timezone, e.g. `2026-05-01T12:00:00Z`. "
    "Results are always in UTC.",
    serialize=datetime.isoformat,
    parse_value=_parse_datetime,
)
