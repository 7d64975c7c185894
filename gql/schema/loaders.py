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
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from aiodataloader import DataLoader
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from domain import comments, posts
from persistence.engine import Database
from persistence.models import AuditLog, Comment, FeatureFlag, FlagOverride, Post, Tag, User
from persistence.pagination import Page
from persistence.repositories.audit_log import AuditLogRepository
from persistence.repositories.comment import CommentRepository
from persistence.repositories.feature_flag import FeatureFlagRepository, FlagOverrideRepository
from persistence.repositories.post import PostRepository
from persistence.repositories.tag import TagRepository
from persistence.repositories.user import UserRepository
from persistence.repository import BaseRepository

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
    database: Database,
    repository: type[BaseRepository[Any]],
    visible: Callable[[], ColumnElement[bool]] | None = None,
) -> Loader[Any, Any]:
    """Rows by id, restricted to the ``visible`` ones: a condition built at the first
    batch, so that a mutation priming the loader with what it wrote builds none."""

    async def batch(session: AsyncSession, ids: list[Any]) -> Sequence[Any]:
        repo = repository(session)
        if visible is None:
            return await repo.get_many(ids)
        found = {row.id: row for row in await repo.list(repo.one_of(repo.model.id, ids), visible())}  # type: ignore[attr-defined]
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
    uses two or three of them."""

    def __init__(self, database: Database, viewer: User | None) -> None:
        self._database = database
        self._viewer = viewer

    @cached_property
    def _visible_posts(self) -> ColumnElement[bool]:
        return posts.visible_to(self._viewer)

    @cached_property
    def user_by_id(self) -> Loader[int, User | None]:
        return _by_id(self._database, UserRepository)

    @cached_property
    def post_by_id(self) -> Loader[UUID, Post | None]:
        return _by_id(self._database, PostRepository, lambda: self._visible_posts)

    @cached_property
    def comment_by_id(self) -> Loader[UUID, Comment | None]:
        visible = comments.visible_to
        return _by_id(self._database, CommentRepository, lambda: visible(self._viewer))

    @cached_property
    def tag_by_id(self) -> Loader[UUID, Tag | None]:
        return _by_id(self._database, TagRepository)

    @cached_property
    def feature_flag_by_id(self) -> Loader[UUID, FeatureFlag | None]:
        return _by_id(self._database, FeatureFlagRepository)

    @cached_property
    def flag_override_by_id(self) -> Loader[UUID, FlagOverride | None]:
        return _by_id(self._database, FlagOverrideRepository)

    @cached_property
    def audit_entry_by_id(self) -> Loader[UUID, AuditLog | None]:
        return _by_id(self._database, AuditLogRepository)

    @cached_property
    def tags_by_post_id(self) -> Loader[UUID, list[Tag]]:
        async def tags_by_post(session: AsyncSession, ids: list[UUID]) -> list[list[Tag]]:
            found = await TagRepository(session).tags_by_post(ids)
            return [found[i] for i in ids]

        return _loader(self._database, tags_by_post)

    @cached_property
    def comments_by_post_id(self) -> DataLoader[PageKey, Page[Comment]]:
        return _pages_by_parent(self._database, CommentRepository, Comment.post_id)

    @cached_property
    def comment_count_by_post_id(self) -> DataLoader[UUID, int]:
        return _counts_by_parent(self._database, CommentRepository, Comment.post_id)

    @cached_property
    def posts_by_author_id(self) -> DataLoader[PageKey, Page[Post]]:
        return _pages_by_parent(
            self._database, PostRepository, Post.created_by_id, self._visible_posts
        )

    @cached_property
    def post_count_by_author_id(self) -> DataLoader[int, int]:
        return _counts_by_parent(
            self._database, PostRepository, Post.created_by_id, self._visible_posts
        )

    @cached_property
    def history_by_entity_id(self) -> DataLoader[PageKey, Page[AuditLog]]:
        return _pages_by_parent(self._database, AuditLogRepository, AuditLog.entity_id)

    @cached_property
    def history_count_by_entity_id(self) -> DataLoader[str, int]:
        return _counts_by_parent(self._database, AuditLogRepository, AuditLog.entity_id)

    @cached_property
    def overrides_by_flag_id(self) -> DataLoader[PageKey, Page[FlagOverride]]:
        return _pages_by_parent(self._database, FlagOverrideRepository, FlagOverride.flag_id)

    @cached_property
    def override_count_by_flag_id(self) -> DataLoader[UUID, int]:
        return _counts_by_parent(self._database, FlagOverrideRepository, FlagOverride.flag_id)

    @cached_property
    def override_by_flag_and_user(self) -> DataLoader[tuple[UUID, int], FlagOverride | None]:
        async def override_by_pair(
            session: AsyncSession, pairs: list[tuple[UUID, int]]
        ) -> list[FlagOverride | None]:
            found = await FlagOverrideRepository(session).find_pairs(pairs)
            return [found.get(pair) for pair in pairs]

        return _loader(self._database, override_by_pair)
