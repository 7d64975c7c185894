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
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from aiodataloader import DataLoader
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

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
    database: Database, repository: type[BaseRepository[Any]], *where: ColumnElement[bool]
) -> Loader[Any, Any]:
    async def batch(session: AsyncSession, ids: list[Any]) -> Sequence[Any]:
        repo = repository(session)
        if not where:
            return await repo.get_many(ids)
        found = {row.id: row for row in await repo.list(repo.model.id.in_(ids), *where)}  # type: ignore[attr-defined]
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


@dataclass(frozen=True)
class Loaders:
    user_by_id: Loader[int, User | None]
    post_by_id: DataLoader[UUID, Post | None]
    comment_by_id: DataLoader[UUID, Comment | None]
    tag_by_id: DataLoader[UUID, Tag | None]
    feature_flag_by_id: DataLoader[UUID, FeatureFlag | None]
    flag_override_by_id: DataLoader[UUID, FlagOverride | None]
    audit_entry_by_id: DataLoader[UUID, AuditLog | None]
    tags_by_post_id: Loader[UUID, list[Tag]]
    comments_by_post_id: DataLoader[PageKey, Page[Comment]]
    comment_count_by_post_id: DataLoader[UUID, int]
    posts_by_author_id: DataLoader[PageKey, Page[Post]]
    post_count_by_author_id: DataLoader[int, int]
    history_by_entity_id: DataLoader[PageKey, Page[AuditLog]]
    history_count_by_entity_id: DataLoader[str, int]
    overrides_by_flag_id: DataLoader[PageKey, Page[FlagOverride]]
    override_count_by_flag_id: DataLoader[UUID, int]
    override_by_flag_and_user: DataLoader[tuple[UUID, int], FlagOverride | None]

    @classmethod
    def for_request(cls, database: Database, viewer: User | None) -> Loaders:
        visible_posts = PostRepository.visible_to(viewer)

        async def tags_by_post(session: AsyncSession, ids: list[UUID]) -> list[list[Tag]]:
            found = await TagRepository(session).tags_by_post(ids)
            return [found[i] for i in ids]

        async def override_by_pair(
            session: AsyncSession, pairs: list[tuple[UUID, int]]
        ) -> list[FlagOverride | None]:
            found = await FlagOverrideRepository(session).find_pairs(pairs)
            return [found.get(pair) for pair in pairs]

        return cls(
            user_by_id=_by_id(database, UserRepository),
            post_by_id=_by_id(database, PostRepository, visible_posts),
            comment_by_id=_by_id(database, CommentRepository, CommentRepository.visible_to(viewer)),
            tag_by_id=_by_id(database, TagRepository),
            feature_flag_by_id=_by_id(database, FeatureFlagRepository),
            flag_override_by_id=_by_id(database, FlagOverrideRepository),
            audit_entry_by_id=_by_id(database, AuditLogRepository),
            tags_by_post_id=_loader(database, tags_by_post),
            comments_by_post_id=_pages_by_parent(database, CommentRepository, Comment.post_id),
            comment_count_by_post_id=_counts_by_parent(
                database, CommentRepository, Comment.post_id
            ),
            posts_by_author_id=_pages_by_parent(
                database, PostRepository, Post.created_by_id, visible_posts
            ),
            post_count_by_author_id=_counts_by_parent(
                database, PostRepository, Post.created_by_id, visible_posts
            ),
            history_by_entity_id=_pages_by_parent(database, AuditLogRepository, AuditLog.entity_id),
            history_count_by_entity_id=_counts_by_parent(
                database, AuditLogRepository, AuditLog.entity_id
            ),
            overrides_by_flag_id=_pages_by_parent(
                database, FlagOverrideRepository, FlagOverride.flag_id
            ),
            override_count_by_flag_id=_counts_by_parent(
                database, FlagOverrideRepository, FlagOverride.flag_id
            ),
            override_by_flag_and_user=_loader(database, override_by_pair),
        )
