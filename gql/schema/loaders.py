"""Per-request dataloaders: each batch is one repository call in its own read session.

GraphQL resolves sibling fields concurrently and an AsyncSession must not be shared
between tasks, so every batch opens a short-lived autocommit read session of its own.
Loaders live for one request (they cache what this viewer may see); a mutation clears
or primes the keys it changed.
"""

from __future__ import annotations

from asyncio import Future
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from functools import cached_property
from typing import Any, NamedTuple, TypeVar, cast
from uuid import UUID

from aiodataloader import DataLoader
from sqlalchemy import ColumnElement, false
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from gql.schema.entities import entity_of
from persistence.base import Base
from persistence.chain import positions_of
from persistence.engine import Database
from persistence.models import AuditLog, FlagOverride, Tag, User
from persistence.pagination import Page
from persistence.personal import load_deks
from persistence.repositories.audit_log import AuditLogRepository
from persistence.repositories.feature_flag import FlagOverrideRepository
from persistence.repositories.tag import TagRepository
from persistence.repository import BaseRepository, repository_for

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class PageKey(NamedTuple):
    """One parent's page: loads with equal ``first``/``after`` batch together."""

    parent_id: Any
    first: int
    after: str | None = None


class Loader(DataLoader[K, V]):
    """A DataLoader that can answer synchronously for a key it has already loaded."""

    def __init__(self, batch_load_fn: Callable[[list[K]], Coroutine[Any, Any, list[V]]]) -> None:
        self._futures: dict[K, Future[V]] = {}
        super().__init__(batch_load_fn, cache_map=self._futures)

    def now_or_later(self, key: K) -> V | Awaitable[V]:
        """The value, if ``key`` is loaded already; else its (batched) load. A resolver
        returning a plain value costs the executor no coroutine and no task."""
        future = self._futures.get(key)
        if future is not None and future.done() and not future.exception():
            return future.result()
        return self.load(key)


def _loader(
    database: Database, batch: Callable[[AsyncSession, list[K]], Awaitable[Sequence[V]]]
) -> Loader[K, V]:
    async def load(keys: list[K]) -> list[V]:
        async with database.reader() as session:
            return list(await batch(session, keys))

    return Loader(load)


def _by_id(
    database: Database, model: type[Base], visible: Callable[[], ColumnElement[bool]] | None
) -> Loader[Any, Any]:
    """Rows by id, restricted to the ``visible`` ones: a condition built at the first
    batch, so that a mutation priming the loader with what it wrote builds none."""
    repository = repository_for(model)

    async def batch(session: AsyncSession, ids: list[Any]) -> Sequence[Any]:
        repo = repository(session)
        if visible is None:
            return await repo.get_many(ids)
        condition = visible()
        if condition is false():  # nothing is visible: no need to ask
            return [None] * len(ids)
        found = {row.id: row for row in await repo.list(repo.one_of(model.id, ids), condition)}  # type: ignore[attr-defined]
        return [found.get(id) for id in ids]

    return _loader(database, batch)


def _pages_by_parent(
    database: Database,
    repository: type[BaseRepository[Any]],
    parent: Any,
    *where: ColumnElement[bool],
) -> DataLoader[PageKey, Page[Any]]:
    async def batch(session: AsyncSession, keys: list[PageKey]) -> Sequence[Page[Any]]:
        repo = repository(session)
        groups: dict[tuple[int, str | None], list[Any]] = defaultdict(list)
        for key in keys:
            groups[key.first, key.after].append(key.parent_id)
        pages: dict[PageKey, Page[Any]] = {}
        for (first, after), parent_ids in groups.items():
            found = await repo.pages_by_parent(parent, parent_ids, *where, first=first, after=after)
            pages.update({PageKey(p, first, after): found[p] for p in parent_ids})
        return [pages[key] for key in keys]

    return _loader(database, batch)


def _counts_by_parent(
    database: Database,
    repository: type[BaseRepository[Any]],
    parent: Any,
    *where: ColumnElement[bool],
) -> DataLoader[Any, int]:
    async def batch(session: AsyncSession, parent_ids: list[Any]) -> Sequence[int]:
        counts = await repository(session).count_by_parent(parent, parent_ids, *where)
        return [counts[p] for p in parent_ids]

    return _loader(database, batch)


class Loaders:
    """One request's loaders, each made when a resolver first asks for it: a request
    uses two or three of them. Rows come through their entity's visibility rule
    (:mod:`gql.schema.entities`)."""

    def __init__(self, database: Database, viewer: User | None) -> None:
        self._database = database
        self._viewer = viewer
        self._by_id: dict[type[Base], Loader[Any, Any]] = {}
        self._pages: dict[Any, DataLoader[PageKey, Page[Any]]] = {}
        self._counts: dict[Any, DataLoader[Any, int]] = {}

    def _visible(self, model: type[Base]) -> Callable[[], ColumnElement[bool]] | None:
        rule = entity_of(model).visible_to
        return None if rule is None else lambda: rule(self._viewer)

    def by_id(self, model: type[Base]) -> Loader[Any, Any]:
        """Rows of ``model`` by id: None for a row that is missing or hidden."""
        loader = self._by_id.get(model)
        if loader is None:
            loader = self._by_id[model] = _by_id(self._database, model, self._visible(model))
        return loader

    def pages(self, parent: InstrumentedAttribute[Any]) -> DataLoader[PageKey, Page[Any]]:
        """Each parent's page of the rows whose ``parent`` column points at it."""
        loader = self._pages.get(parent)
        if loader is None:
            loader = self._pages[parent] = _pages_by_parent(*self._children(parent))
        return loader

    def counts(self, parent: InstrumentedAttribute[Any]) -> DataLoader[Any, int]:
        """How many rows each parent's ``pages`` hold in all."""
        loader = self._counts.get(parent)
        if loader is None:
            loader = self._counts[parent] = _counts_by_parent(*self._children(parent))
        return loader

    def _children(self, parent: InstrumentedAttribute[Any]) -> tuple[Any, ...]:
        """What a loader of the rows under ``parent`` needs: the database, the rows'
        repository, the column and, if they have one, their visibility condition."""
        model = cast(type[Base], parent.class_)
        visible = self._visible(model)
        where = () if visible is None else (visible(),)
        return (self._database, repository_for(model), parent, *where)

    def forget(self) -> None:
        """Forget what was loaded: a mutation changed it."""
        for loaders in (self._by_id, self._pages, self._counts):
            for loader in loaders.values():
                loader.clear_all()
        for name, member in vars(Loaders).items():
            if isinstance(member, cached_property) and name in self.__dict__:
                getattr(self, name).clear_all()

    @cached_property
    def tags_by_post_id(self) -> Loader[UUID, list[Tag]]:
        async def tags_by_post(session: AsyncSession, ids: list[UUID]) -> list[list[Tag]]:
            found = await TagRepository(session).tags_by_post(ids)
            return [found[i] for i in ids]

        return _loader(self._database, tags_by_post)

    @cached_property
    def history_by_entity_id(self) -> DataLoader[PageKey, Page[AuditLog]]:
        """Not through the entries' visibility (superusers): an object's history is its
        creator's to read as well (``Audited.history`` decides)."""
        return _pages_by_parent(self._database, AuditLogRepository, AuditLog.entity_id)

    @cached_property
    def position_by_entry_id(self) -> Loader[UUID, int | None]:
        """Audit entries' places in commit order; None until the sequencer gives one."""

        async def positions(session: AsyncSession, ids: list[UUID]) -> list[int | None]:
            found = await positions_of(await session.connection(), ids)
            return [found.get(i) for i in ids]

        return _loader(self._database, positions)

    @cached_property
    def history_count_by_entity_id(self) -> DataLoader[str, int]:
        return _counts_by_parent(self._database, AuditLogRepository, AuditLog.entity_id)

    @cached_property
    def deks_by_user_id(self) -> Loader[int, bytes | None]:
        """Users' data keys, to open the personal values in audit entries: None for an
        erased user, whose values read ``[erased]`` (:mod:`persistence.personal`)."""
        keys = self._database.keys
        if keys is None:
            raise RuntimeError("this Database holds no audit keys (Database.keys)")

        async def deks_by_user(session: AsyncSession, ids: list[int]) -> list[bytes | None]:
            found = await load_deks(session, keys, ids)
            return [found.get(i) for i in ids]

        return _loader(self._database, deks_by_user)

    @cached_property
    def override_by_flag_and_user(self) -> DataLoader[tuple[UUID, int], FlagOverride | None]:
        async def override_by_pair(
            session: AsyncSession, pairs: list[tuple[UUID, int]]
        ) -> list[FlagOverride | None]:
            found = await FlagOverrideRepository(session).find_pairs(pairs)
            return [found.get(pair) for pair in pairs]

        return _loader(self._database, override_by_pair)
