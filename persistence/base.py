"""The declarative base: one naming convention and one type map for every model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import JSON, DateTime, Dialect, MetaData, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, InstanceState
from sqlalchemy.orm.base import DEFAULT_STATE_ATTR
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.types import TypeDecorator

# Every constraint and index gets a predictable name, so migrations can refer to it and
# persistence.errors can map a violated constraint back to the field it guards.
# Ref: https://docs.sqlalchemy.org/en/20/core/constraints.html#configuring-constraint-naming-conventions
NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}


class NaiveDatetimeError(ValueError):
    """A datetime without a timezone reached the database layer."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no timezone support, so the value is
    normalised to UTC and stored without an offset, and read back as UTC. A naive
    datetime is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(f"naive datetime {value.isoformat()} has no timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:  # asyncpg's are UTC already
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        UUID: Uuid(),
        dict[str, Any]: JSON().with_variant(JSONB(), "postgresql"),
    }

    if not TYPE_CHECKING:  # mypy would take every attribute of a model for Any

        def __getattr__(self, name: str) -> Any:
            """Called by Python only for an attribute the instance lacks: makes the state
            of a snapshot (:mod:`persistence.snapshots`) when something first asks."""
            if name == DEFAULT_STATE_ATTR and self.__dict__:
                return _detached_state(self)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def _detached_state(snapshot: Base) -> InstanceState[Any]:
    """The state the ORM gives an entity it loaded and then let go, as
    ``make_transient_to_detached`` makes it: its identity key, its loaded values
    committed (they are in its ``__dict__`` already, with nothing pending).

    A snapshot has column values and no state; an instance the ORM is constructing has
    neither yet (its ``__init__`` asks whether there is a state before it sets a value),
    so it still gets the transient state the ORM then makes for it."""
    manager = manager_of_class(type(snapshot))
    state = InstanceState(snapshot, manager)
    snapshot.__dict__[DEFAULT_STATE_ATTR] = state
    mapper = manager.mapper
    state.key = mapper.identity_key_from_primary_key(
        tuple(snapshot.__dict__[str(column.key)] for column in mapper.primary_key)
    )
    return state
