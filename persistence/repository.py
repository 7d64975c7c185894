"""``BaseRepository[T]``: reads and writes of one model, built from statements.

Every read starts from :meth:`BaseRepository.statement`, which already hides
soft-deleted rows, so no read path can forget to. ``get_*`` returns ``T | None``,
``list_*`` returns ``Sequence[T]``. Writes flush and never commit: the unit of work
that owns the session commits once, when the outcome is known.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    any_,
    bindparam,
    exists,
    func,
    inspect,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased, make_transient_to_detached
from sqlalchemy.orm.interfaces import ORMOption

from persistence.audit import bulk_insert
from persistence.base import Base, utcnow
from persistence.errors import (
    ConflictError,
    InvalidFilterError,
    MultipleResultsFoundError,
    NotFoundError,
    ValidationError,
    entity_name,
)
from persistence.mixins import SoftDeleteMixin, VersionMixin
from persistence.pagination import Ordering, Page, PageRequest, SortKey
from persistence.snapshots import entities

T = TypeVar("T", bound=Base)
E = TypeVar("E")

_PREPARED: dict[tuple[type, str, str], Any] = {}
_REPOSITORIES: dict[type[Base], type[BaseRepository[Any]]] = {}

# Stamped by the unit of work or the database; an update naming one of them is a bug.
_PROTECTED = frozenset(
    {"id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
     "deleted_at", "deleted_by_id"}
)  # fmt: skip


class BaseRepository(Generic[T]):
    model: ClassVar[type[Base]]
    default_order: ClassVar[Sequence[SortKey]] = ()
    """The keyset order of ``page`` when the caller names none; the id is appended."""
    sortable: ClassVar[frozenset[str]] = frozenset()
    """Columns a caller may order by name (see ``sort_keys``); all NOT NULL."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "model" in cls.__dict__:
            _REPOSITORIES[cls.model] = cls

    # -- statements --------------------------------------------------------------------

    @property
    def _id(self) -> InstrumentedAttribute[Any]:
        return self.model.id  # type: ignore[attr-defined, no-any-return]

    @property
    def _dialect(self) -> str:
        bind = self.session.bind
        return "" if bind is None else bind.dialect.name

    def one_of(
        self, column: Any, values: Collection[Any] | None = None, *, parameter: str | None = None
    ) -> ColumnElement[bool]:
        """``column IN values``; on PostgreSQL ``column = ANY(:values)``, one array
        parameter. An IN list is rendered anew for every execution (for 60 ids that
        cost more than the query), and each length is another statement for the driver
        and the server to prepare; the array form is one statement for any length.
        Without ``values``, the values are the execution's parameter ``parameter``."""
        value = None if values is None else list(values)
        if self._dialect == "postgresql":
            array = bindparam(parameter, value, type_=ARRAY(column.type))
            return column == any_(array)  # type: ignore[no-any-return]
        return column.in_(bindparam(parameter, value, expanding=True))  # type: ignore[no-any-return]

    def prepared(self, name: str, build: Callable[[], E]) -> E:
        """The statement (or ordering) ``build`` makes, made once per repository class and
        dialect: building a statement costs about as much CPU as running a small one."""
        key = (type(self), name, self._dialect)
        statement = _PREPARED.get(key)
        if statement is None:
            statement = _PREPARED[key] = build()
        return statement

    def statement(self, *, include_deleted: bool = False) -> Select[T]:
        """``SELECT model``, without soft-deleted rows unless asked for."""

        def build() -> Select[T]:
            stmt: Select[T] = select(self.model)
            if issubclass(self.model, SoftDeleteMixin) and not include_deleted:
                stmt = stmt.where(self.model.deleted_at.is_(None))
            return stmt

        return self.prepared(f"statement:{include_deleted}", build)

    def where(self, stmt: Select[Any], where: Sequence[ColumnElement[bool]],
              filter_by: Mapping[str, Any]) -> Select[Any]:  # fmt: skip
        """Apply SQL criteria and ``column=value`` filters (a collection means IN)."""
        columns = inspect(self.model).columns
        for name, value in filter_by.items():
            column = columns.get(name)
            if column is None:
                raise InvalidFilterError(name, f"Cannot filter on {name}.")
            if value is None:
                stmt = stmt.where(column.is_(None))
            elif isinstance(value, Collection) and not isinstance(value, str | bytes):
                stmt = stmt.where(column.in_(value))
            else:
                stmt = stmt.where(column == value)
        return stmt.where(*where) if where else stmt

    @classmethod
    def sort_keys(cls, names: Sequence[tuple[str, bool]]) -> list[SortKey]:
        """SortKeys for (column name, descending) pairs a caller asked for."""
        keys = []
        for name, descending in names:
            if name not in cls.sortable:
                raise InvalidFilterError("orderBy", f"Cannot order by {name}.")
            keys.append(SortKey(getattr(cls.model, name), descending=descending))
        return keys

    def ordering(self, keys: Sequence[SortKey] = ()) -> Ordering:
        if keys:
            return Ordering.of(keys, self._id)
        return self.prepared("ordering", lambda: Ordering.of(self.default_order, self._id))

    # -- reads -------------------------------------------------------------------------

    async def get(
        self,
        id: Any,
        *where: ColumnElement[bool],
        include_deleted: bool = False,
        for_update: bool = False,
        options: Sequence[ORMOption] = (),
    ) -> T | None:
        """The row with this id (and matching ``where``), or None. ``for_update`` locks
        it and re-reads it, so a version check that follows cannot race with another
        writer."""
        stmt = self.statement(include_deleted=include_deleted).where(self._id == id, *where)
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        found = await self._entities(stmt, options=options)
        return found[0] if found else None

    async def get_or_raise(self, id: Any, *where: ColumnElement[bool], **kwargs: Any) -> T:
        found = await self.get(id, *where, **kwargs)
        if found is None:
            raise NotFoundError(self._entity, id)
        return found

    async def get_many(self, ids: Sequence[Any]) -> list[T | None]:
        """The rows with these ids, in the order of ``ids`` (None where missing)."""
        if not ids:
            return []
        stmt = self.prepared(
            "get_many", lambda: self.statement().where(self.one_of(self._id, parameter="ids"))
        )
        rows = await self._entities(stmt, {"ids": list(set(ids))})
        found = {row.id: row for row in rows}  # type: ignore[attr-defined]
        return [found.get(id) for id in ids]

    async def get_one_by(self, *where: ColumnElement[bool], **filter_by: Any) -> T | None:
        """The one row matching, or None; more than one is an error."""
        stmt = self.where(self.statement(), where, filter_by)
        found = await self._entities(stmt.limit(2))
        if len(found) > 1:
            raise MultipleResultsFoundError(self._entity)
        return found[0] if found else None

    async def list(
        self,
        *where: ColumnElement[bool],
        order_by: Sequence[SortKey] = (),
        limit: int | None = None,
        include_deleted: bool = False,
        options: Sequence[ORMOption] = (),
        **filter_by: Any,
    ) -> Sequence[T]:
        stmt = self.where(self.statement(include_deleted=include_deleted), where, filter_by)
        stmt = stmt.order_by(*self.ordering(order_by).clauses()).limit(limit)
        return await self._entities(stmt, options=options)

    async def count(self, *where: ColumnElement[bool], include_deleted: bool = False,
                    **filter_by: Any) -> int:  # fmt: skip
        stmt = self.where(self.statement(include_deleted=include_deleted), where, filter_by)
        return await self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0

    async def exists(self, *where: ColumnElement[bool], **filter_by: Any) -> bool:
        stmt = self.where(self.statement(), where, filter_by)
        return bool(await self.session.scalar(select(exists(stmt))))

    async def page(
        self,
        request: PageRequest,
        *where: ColumnElement[bool],
        order_by: Sequence[SortKey] = (),
        default_size: int = 20,
        with_total: bool = False,
        include_deleted: bool = False,
        options: Sequence[ORMOption] = (),
        **filter_by: Any,
    ) -> Page[T]:
        """One keyset page. ``with_total`` adds a COUNT of all matching rows."""
        ordering = self.ordering(order_by)
        size, backwards = request.size(default_size), request.backwards
        base = self.where(self.statement(include_deleted=include_deleted), where, filter_by)
        stmt = base
        cursor = request.before if backwards else request.after
        if cursor is not None:
            argument = "before" if backwards else "after"
            stmt = stmt.where(ordering.beyond(ordering.decode(cursor, argument=argument),
                                              reverse=backwards))  # fmt: skip
        stmt = stmt.order_by(*ordering.clauses(reverse=backwards)).limit(size + 1)
        rows = list(await self._entities(stmt, options=options))
        more = len(rows) > size
        rows = rows[:size]
        if backwards:
            rows.reverse()
        total = None
        if with_total:
            total = await self.session.scalar(select(func.count()).select_from(base.subquery()))
        return Page(
            items=rows,
            ordering=ordering,
            has_next_page=more if not backwards else request.before is not None,
            has_previous_page=more if backwards else request.after is not None,
            total_count=total,
        )

    async def pages_by_parent(
        self,
        parent: InstrumentedAttribute[Any],
        parent_ids: Sequence[Hashable],
        *where: ColumnElement[bool],
        first: int,
        after: str | None = None,
        order_by: Sequence[SortKey] = (),
    ) -> dict[Hashable, Page[T]]:
        """For each parent, its first ``first`` children (after ``after``), in one
        statement: ``row_number() OVER (PARTITION BY parent ...)`` numbers each parent's
        rows, and the outer query keeps the first ``first + 1`` of each."""
        PageRequest(first=first, after=after)  # validates the size
        ordering = self.ordering(order_by)
        inner = self.statement().where(self.one_of(parent, set(parent_ids)), *where)
        if after is not None:
            inner = inner.where(ordering.beyond(ordering.decode(after)))
        position = func.row_number().over(partition_by=parent, order_by=ordering.clauses())
        subquery = inner.add_columns(position.label("position")).subquery()
        row = aliased(self.model, subquery)
        stmt = (
            select(row)
            .where(subquery.c.position <= first + 1)
            .order_by(subquery.c[parent.key], subquery.c.position)
        )
        grouped: dict[Hashable, list[T]] = defaultdict(list)
        for item in await self._entities(stmt):
            grouped[getattr(item, parent.key)].append(item)
        return {
            parent_id: Page(
                items=grouped[parent_id][:first],
                ordering=ordering,
                has_next_page=len(grouped[parent_id]) > first,
                has_previous_page=after is not None,
            )
            for parent_id in parent_ids
        }

    async def count_by_parent(
        self,
        parent: InstrumentedAttribute[Any],
        parent_ids: Sequence[Hashable],
        *where: ColumnElement[bool],
    ) -> dict[Hashable, int]:
        """For each parent, how many children match, in one grouped statement."""
        stmt = (
            self.statement()
            .where(self.one_of(parent, set(parent_ids)), *where)
            .with_only_columns(parent, func.count())
            .group_by(parent)
        )
        counts: dict[Hashable, int] = dict((await self.session.execute(stmt)).all())
        return {parent_id: counts.get(parent_id, 0) for parent_id in parent_ids}

    async def _entities(
        self,
        stmt: Select[Any],
        params: Mapping[str, Any] | None = None,
        *,
        options: Sequence[ORMOption] = (),
    ) -> Sequence[T]:
        """The entities ``stmt`` selects: snapshots on a read session
        (:mod:`persistence.snapshots`), unless loader ``options`` need the ORM."""
        if options:
            return (await self.session.scalars(stmt.options(*options), params)).all()
        return await entities(self.session, cast(type[T], self.model), stmt, params)

    # -- writes ------------------------------------------------------------------------

    async def add(self, entity: T) -> T:
        """INSERT the row (stamped and audited), as :meth:`add_many` does: the ORM's flush
        of one new object cost a quarter more CPU than the statement it sends."""
        await self.add_many([entity])
        return entity

    async def add_many(self, entities: Sequence[T]) -> Sequence[T]:
        """INSERT many rows in one statement (stamped and audited like any write).

        The entities come back persistent in the session, with their ids and defaults.
        """
        mapper = inspect(self.model)
        keys = [attr.key for attr in mapper.column_attrs]
        rows = [{k: v for k, v in inspect(e).dict.items() if k in keys} for e in entities]
        await self.session.run_sync(bulk_insert, self.model, rows)
        for entity, row in zip(entities, rows, strict=True):
            # What the database now holds, set as loaded state (no change events):
            # make_transient_to_detached takes it as committed.
            inspect(entity).dict.update({key: row.get(key) for key in keys})
            make_transient_to_detached(entity)
            self.session.add(entity)
        return entities

    async def update(
        self, entity: T, values: Mapping[str, Any], *, expected_version: int | None = None
    ) -> T:
        """Set ``values`` on ``entity`` and flush.

        With ``expected_version``, a row whose version has moved on raises
        ``ConflictError`` with the current version. Load the entity with
        ``get(..., for_update=True)`` so that the check cannot race.
        """
        self.check_version(entity, expected_version)
        columns = inspect(self.model).columns
        for key, value in values.items():
            if key in _PROTECTED or key not in columns:
                raise ValidationError(key, f"{key} cannot be changed.")
            setattr(entity, key, value)
        await self.session.flush()
        return entity

    async def delete(self, entity: T, *, expected_version: int | None = None) -> None:
        self.check_version(entity, expected_version)
        await self.session.delete(entity)
        await self.session.flush()

    async def soft_delete(self, entity: T, *, expected_version: int | None = None) -> T:
        """Mark the row deleted; it disappears from every read. Idempotent."""
        self.check_version(entity, expected_version)
        if not isinstance(entity, SoftDeleteMixin):
            raise TypeError(f"{self.model.__name__} is not soft-deletable")
        if entity.deleted_at is None:
            entity.deleted_at = utcnow()
            await self.session.flush()
        return entity

    async def restore(self, entity: T, *, expected_version: int | None = None) -> T:
        """Bring a soft-deleted row back. Idempotent."""
        self.check_version(entity, expected_version)
        if not isinstance(entity, SoftDeleteMixin):
            raise TypeError(f"{self.model.__name__} is not soft-deletable")
        if entity.deleted_at is not None:
            entity.deleted_at = None
            await self.session.flush()
        return entity

    async def touch(self, entity: T) -> T:
        """Make a change to the entity's links (rows that belong to it) a new version
        of it: ``version`` goes up and ``updated_at``/``updated_by_id`` are stamped,
        while no column of its own changes (so no audit entry of its own)."""
        entity.updated_at = utcnow()  # type: ignore[attr-defined]
        await self.session.flush()
        return entity

    def check_version(self, entity: T, expected: int | None) -> None:
        """Raise ConflictError if ``entity`` is not at the ``expected`` version."""
        version = entity.version if isinstance(entity, VersionMixin) else None
        if expected is not None and version is not None and version != expected:
            raise ConflictError(self._entity, version)

    @property
    def _entity(self) -> str:
        return entity_name(self.model)


def repository_for(model: type[T]) -> type[BaseRepository[T]]:
    """The repository of ``model``: its own class if it has one (every module of
    ``persistence.repositories`` is imported), else a plain ``BaseRepository`` of it."""
    importlib.import_module("persistence.repositories")
    found = _REPOSITORIES.get(model)
    if found is None:
        found = type(f"{model.__name__}Repository", (BaseRepository,), {"model": model})
    return cast(type[BaseRepository[T]], found)
