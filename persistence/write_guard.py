"""Nothing writes to a model's table but the audit machinery.

A unit of work audits what its session flushes and what ``add_many`` inserts. Any other
write on its connection would change rows with no stamp, no version and no audit entry:
a Core ``update(Post)``, ``insert(Tag)`` or upsert, an ORM bulk statement, textual SQL.
Such a statement is refused before it is sent, with :class:`UnauditedWriteError`.
(Read sessions cannot write at all: their connections are read-only in the database.)

The audit machinery marks what it sends with :func:`auditing`. Textual SQL is
recognised by the statement's target (``INSERT INTO posts``, ``UPDATE ONLY
public."posts"``, ``WITH ... DELETE FROM posts``, ``TRUNCATE``, ``COPY ... FROM``);
a database function that writes is beyond what can be seen from here. Changing or
removing audit entries is left to the database, which refuses it itself (its trigger,
and the application role's privileges); adding one is refused here, as a forgery.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.base import Base

_auditing: ContextVar[bool] = ContextVar("auditql_auditing", default=False)

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_NAME = r'(?:"?\w+"?\s*\.\s*)?"?(\w+)"?'  # [schema.]table, either part quoted
_TEXT_WRITE = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|COPY)"
    r"(?:\s+INTO|\s+FROM|\s+TABLE)?(?:\s+ONLY)?\s+" + _NAME,
    re.I,
)
_ADDING = {"insert", "merge", "copy"}
_AUDIT_LOG = "audit_log"


class UnauditedWriteError(RuntimeError):
    """A statement would have written to a model's table outside the audit."""

    def __init__(self, table: str) -> None:
        super().__init__(
            f"refused a write to {table!r} that the unit of work would not audit: change "
            "rows through a repository (add, add_many, update, delete) or the session's "
            "objects, never with Core, bulk or textual DML"
        )


@contextlib.contextmanager
def auditing() -> Iterator[None]:
    """The statements sent in this block are the audit machinery's own."""
    token = _auditing.set(True)
    try:
        yield
    finally:
        _auditing.reset(token)


def guard_writes(engine: AsyncEngine) -> None:
    """Refuse, on ``engine``, every write to a model's table made outside :func:`auditing`."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _check(_conn: Connection, _c: Any, statement: str, _p: Any, context: Any, _m: Any) -> None:
        if _auditing.get():
            return
        for kind, table in _writes(statement, context):
            if table in _model_tables() and (table != _AUDIT_LOG or kind in _ADDING):
                raise UnauditedWriteError(table)


def _writes(statement: str, context: Any) -> list[tuple[str, str]]:
    """(what, table) for each write ``statement`` makes: insert, update, delete..."""
    if context is not None and (context.isinsert or context.isupdate or context.isdelete):
        kind = "insert" if context.isinsert else "update" if context.isupdate else "delete"
        target = context.compiled.statement.table
        return [(kind, str(getattr(target, "name", target)))]
    found = _TEXT_WRITE.findall(_COMMENTS.sub(" ", statement))
    return [(kind.lower(), table.lower()) for kind, table in found]


@cache
def _model_tables() -> frozenset[str]:
    return frozenset(Base.metadata.tables)
