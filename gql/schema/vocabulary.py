"""Audit entries in the schema's words.

The unit of work records a change as the database holds it (:mod:`persistence.audit`):
column names, enum values as stored, references as keys. ``AuditEntry.changes`` reads
it back as the schema names things, when it is read, so that entries written before a
field was renamed read like new ones. Every name comes from the models and the entity
declarations (:mod:`gql.schema.entities`), worked out once per table:

- A column is named by the field of the object's type that shows it: its own
  (``published_at``: ``publishedAt``), the one that follows a foreign key
  (``post_id``: ``post``), or, for a link row recorded on its owner, the owner's
  relationship through the link (a post's ``post_tags.tag_id``: ``tags``).
- A column that no field shows is named the same way, in camelCase, without the
  ``_id`` of a foreign key or the ``_hash`` of a digest: ``deleted_at``: ``deletedAt``,
  ``password_hash``: ``password``.
- A reference becomes the global id of the row it names, an enum value the name of its
  value in the field's enum (``draft``: ``DRAFT``), a date-time (stored as ISO 8601 in
  UTC) the text the ``DateTime`` scalar gives. Nulls, ``[redacted]`` secrets and
  ``[erased]`` personal values stay (:mod:`persistence.personal` opens the others first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from typing import Any, cast

from sqlalchemy import Column, Table
from sqlalchemy.orm import Mapper
from strawberry.types.base import StrawberryOptional, get_object_definition
from strawberry.types.enum import StrawberryEnumDefinition
from strawberry.types.field import StrawberryField
from strawberry.utils.str_converters import to_camel_case

from gql.schema.entities import entities, entry_global_id
from gql.schema.scalars import DateTime
from persistence.base import Base
from persistence.personal import ERASED


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class _Term:
    """A stored column as the schema says it: the field's name, and how values read."""

    field: str
    render: Callable[[Any], Any] = _same

    def say(self, value: Any) -> Any:
        return value if value is None or value == ERASED else self.render(value)


def translate(table: str, changes: Mapping[str, Sequence[Any]]) -> Iterator[tuple[str, Any, Any]]:
    """``(field, old, new)`` for each stored ``{column: [old, new]}`` of an entry about a
    row of ``table``. A column the models no longer have keeps its name, in camelCase."""
    terms = _terms(table)
    for column, (old, new) in changes.items():
        term = terms.get(column) or _Term(to_camel_case(column))
        yield term.field, term.say(old), term.say(new)


@cache
def _terms(table_name: str) -> dict[str, _Term]:
    table = Base.metadata.tables.get(table_name)
    if table is None:  # dropped since its entries were written
        return {}
    mapper = _mapper_of(table)
    subject = _subject(mapper)
    fields = _fields(subject.class_)
    secret: frozenset[str] = getattr(mapper.class_, "__audit_redacted__", frozenset())
    return {c.key: _term(c, subject, fields, c.key in secret) for c in mapper.columns}


def _term(
    column: Column[Any], subject: Mapper[Any], fields: Mapping[str, StrawberryField], secret: bool
) -> _Term:
    names = (column.key, *_relations(subject, column), _bare(column))
    field = next((fields[name] for name in names if name in fields), None)
    if field is None:
        name = to_camel_case(_bare(column))
    else:
        name = field.graphql_name or to_camel_case(field.python_name)
    return _Term(name, _same if secret else _render(column, field))


def _render(column: Column[Any], field: StrawberryField | None) -> Callable[[Any], Any]:
    if column.foreign_keys:
        [foreign_key] = column.foreign_keys
        return partial(_global_id, foreign_key.column.table.name)
    if issubclass(column.type.python_type, datetime):
        return _date_time
    enum = _enum(field)
    if enum is None:
        return _same
    names = {value.value: value.name for value in enum.values}
    return lambda value: names.get(value, value)


def _global_id(table: str, key: Any) -> str:
    return entry_global_id(table, str(key))


def _date_time(stored: str) -> str:
    """A date-time as stored (``datetime.isoformat``), as ``DateTime`` results are written."""
    serialize = cast("Callable[[datetime], str]", DateTime.serialize)  # it declares one
    return serialize(datetime.fromisoformat(stored))


def _enum(field: StrawberryField | None) -> StrawberryEnumDefinition | None:
    shown = None if field is None else field.type
    if isinstance(shown, StrawberryOptional):
        shown = shown.of_type
    return shown if isinstance(shown, StrawberryEnumDefinition) else None


def _bare(column: Column[Any]) -> str:
    """The column's name without the word for how it is stored: a foreign key's ``_id``,
    a digest's ``_hash`` (``password_hash`` holds what a client sends as ``password``)."""
    return column.key.removesuffix("_id" if column.foreign_keys else "_hash")


def _relations(subject: Mapper[Any], column: Column[Any]) -> list[str]:
    """``subject``'s relationships that follow ``column``: a foreign key of its own
    (``Comment.post``), or one of a link table between it and another (``Post.tags``)."""
    targets = {foreign_key.column.table for foreign_key in column.foreign_keys}
    return [
        relationship.key
        for relationship in subject.relationships
        if relationship.target in targets
        and (column in relationship.local_columns or relationship.secondary is column.table)
    ]


def _fields(model: type) -> dict[str, StrawberryField]:
    """The fields of ``model``'s GraphQL type by Python name; none if it has no type."""
    graphql_type = next((found.graphql_type for found in entities() if found.model is model), None)
    if graphql_type is None:
        return {}
    definition = get_object_definition(graphql_type, strict=True)
    return {field.python_name: field for field in definition.fields}


def _subject(mapper: Mapper[Any]) -> Mapper[Any]:
    """The mapper of the rows an entry of ``mapper``'s table is about: its own, or, for a
    link row recorded on its owner (``__audit_owner__``), the owner's."""
    owner = getattr(mapper.class_, "__audit_owner__", None)
    if owner is None:
        return mapper
    [foreign_key] = mapper.columns[owner].foreign_keys
    return _subject(_mapper_of(foreign_key.column.table))


def _mapper_of(table: Table) -> Mapper[Any]:
    return next(mapper for mapper in Base.registry.mappers if mapper.local_table is table)
