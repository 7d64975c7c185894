"""The schema standards of DESIGN.md, checked over the metadata of every model."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Column, Index, Table, UniqueConstraint

from persistence.base import NAMING_CONVENTION, Base, UTCDateTime
from persistence.mixins import AppendOnly

TABLES = sorted(Base.metadata.tables.values(), key=lambda table: table.name)
_PREFIXES = tuple(NAMING_CONVENTION)  # pk, fk, uq, ck, ix


def _leading_columns(table: Table) -> set[str]:
    """Columns that lead some index (plain, unique, or the primary key)."""
    leading = {table.primary_key.columns.values()[0].name}
    for index in table.indexes:
        first = index.expressions[0]
        if isinstance(first, Column):
            leading.add(first.name)
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and len(constraint.columns):
            leading.add(constraint.columns.values()[0].name)
    return leading


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_every_foreign_key_column_leads_an_index(table: Table) -> None:
    unindexed = {
        fk.parent.name for fk in table.foreign_keys if fk.parent.name not in _leading_columns(table)
    }
    assert not unindexed, f"{table.name}: foreign keys without an index: {sorted(unindexed)}"


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_every_foreign_key_has_the_type_of_its_target(table: Table) -> None:
    for fk in table.foreign_keys:
        source, target = fk.parent.type, fk.column.type
        assert type(source) is type(target), f"{fk.parent} is {source!r}, {fk.column} is {target!r}"


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_every_constraint_and_index_is_named_by_the_convention(table: Table) -> None:
    items: list[object] = [*table.constraints, *table.indexes]
    for item in items:
        name = getattr(item, "name", None)
        assert isinstance(name, str), f"{table.name}: unnamed {item!r}"
        prefix = "pk" if name == f"pk_{table.name}" else name.split("_", 1)[0]
        assert prefix in _PREFIXES, f"{name}: unknown prefix"
        assert name.startswith(f"{prefix}_{table.name}"), f"{name} does not name {table.name}"
        assert len(name) <= 63, f"{name} is longer than PostgreSQL's identifier limit"
        if isinstance(item, Index):
            expected = "uq" if item.unique else "ix"
            assert prefix == expected, f"{name}: a {'unique ' if item.unique else ''}index"


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_every_table_has_timestamps_unless_it_is_an_append_only_log(table: Table) -> None:
    model = next(m.class_ for m in Base.registry.mappers if m.local_table is table)
    expected = {"created_at"} if issubclass(model, AppendOnly) else {"created_at", "updated_at"}
    if table.name == "post_tags":  # a link row is created and deleted, never updated
        expected = {"created_at"}
    present = {c.name for c in table.columns if isinstance(c.type, UTCDateTime)}
    assert expected <= present, f"{table.name} lacks {sorted(expected - present)}"


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_every_datetime_column_is_timezone_aware(table: Table) -> None:
    for column in table.columns:
        if column.type.python_type.__name__ == "datetime":
            assert isinstance(column.type, UTCDateTime), f"{column} is not a UTCDateTime"


def _keyed_by_its_user(table: Table) -> bool:
    """A row per user, keyed by the user's id (``user_keys``): no key of its own."""
    columns = list(table.primary_key.columns)
    return len(columns) == 1 and any(
        fk.column.table.name == "users" for fk in columns[0].foreign_keys
    )


def test_uuid_keys_everywhere_but_users() -> None:
    integer_keys = {
        table.name
        for table in TABLES
        if any(re.match("INTEGER", str(c.type)) for c in table.primary_key.columns)
        and not _keyed_by_its_user(table)
    }
    assert integer_keys == {"users"}
