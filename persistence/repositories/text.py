"""Literal text matching: user input never becomes a LIKE pattern."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import InstrumentedAttribute

_ESCAPE = "\\"


def contains(columns: list[InstrumentedAttribute[Any]], text: str) -> ColumnElement[bool]:
    """Any of ``columns`` contains ``text``, case-insensitively, with ``%`` and ``_``
    matched literally."""
    escaped = text.replace(_ESCAPE, _ESCAPE * 2).replace("%", r"\%").replace("_", r"\_")
    return or_(*(column.ilike(f"%{escaped}%", escape=_ESCAPE) for column in columns))
