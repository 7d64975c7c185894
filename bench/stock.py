"""The stock server: strawberry + async SQLAlchemy + aiodataloader, as their docs show them.

What a team would write from the strawberry and SQLAlchemy guides, with nothing tuned:
declarative ORM models of the tables it reads, plain ``@strawberry.type`` classes built
from ORM rows, root resolvers that ``select`` ORM objects, and per-request
``aiodataloader.DataLoader``s for a post's authors and tags and a user's posts, each
batch in a session of its own (an ``AsyncSession`` must not be shared by concurrent
tasks, and loaders' batches run concurrently; Ref:
https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#using-asyncsession-with-concurrent-tasks).
Served by strawberry's ASGI app inside Starlette, under the same uvicorn setup as the
other endpoints; strawberry's default JSON encoding.

It answers the benchmark's reads (``bench.documents``) as anonymous viewers see them:
published, undeleted posts and active users. Like the reference it imports nothing from
``gql`` or ``persistence`` and restates the service's output formats (global ids, the
DateTime scalar, enum names); the harness checks its answers equal the service's before
measuring. Configured by environment: ``BENCH_DATABASE_URL`` (SQLAlchemy, asyncpg),
``BENCH_POOL_SIZE``.
"""

from __future__ import annotations

import base64
import enum
import os
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NewType
from uuid import UUID

import strawberry
from aiodataloader import DataLoader
from sqlalchemy import Column, DateTime, ForeignKey, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, aliased, mapped_column
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from strawberry.asgi import GraphQL


class Base(DeclarativeBase):
    pass


class UserModel(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str]
    is_active: Mapped[bool]


class PostModel(Base):
    __tablename__ = "posts"
    id: Mapped[UUID] = mapped_column(primary_key=True)
    title: Mapped[str]
    status: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class TagModel(Base):
    __tablename__ = "tags"
    id: Mapped[UUID] = mapped_column(primary_key=True)
    name: Mapped[str]


post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("posts.id"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id"), primary_key=True),
)

_VISIBLE_POST = (PostModel.status == "published", PostModel.deleted_at.is_(None))


def global_id(type_name: str, key: UUID | int) -> str:
    raw = f"{type_name}:{key.hex if isinstance(key, UUID) else key}"
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


DateTimeScalar = strawberry.scalar(
    NewType("DateTime", datetime),
    name="DateTime",
    serialize=_rfc3339,
    parse_value=datetime.fromisoformat,
)


@strawberry.enum
class PostStatus(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


@strawberry.type
class Tag:
    name: str


@strawberry.type
class User:
    id: strawberry.ID
    username: str
    key: strawberry.Private[int]

    @classmethod
    def from_model(cls, model: UserModel) -> User:
        return cls(id=strawberry.ID(global_id("User", model.id)), username=model.username,
                   key=model.id)  # fmt: skip

    @strawberry.field
    async def posts(self, info: strawberry.Info[Context, None], first: int = 20) -> PostConnection:
        models = await info.context.posts_by_author.load((self.key, first))
        return PostConnection.of(models)


@strawberry.type
class Post:
    id: strawberry.ID
    title: str
    status: PostStatus
    created_at: DateTimeScalar  # type: ignore[valid-type]  # a scalar made at run time
    key: strawberry.Private[UUID]
    created_by_id: strawberry.Private[int | None]
    updated_by_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, model: PostModel) -> Post:
        return cls(
            id=strawberry.ID(global_id("Post", model.id)), title=model.title,
            status=PostStatus(model.status), created_at=model.created_at, key=model.id,
            created_by_id=model.created_by_id, updated_by_id=model.updated_by_id,
        )  # fmt: skip

    @strawberry.field
    async def created_by(self, info: strawberry.Info[Context, None]) -> User | None:
        return await _user(info.context, self.created_by_id)

    @strawberry.field
    async def updated_by(self, info: strawberry.Info[Context, None]) -> User | None:
        return await _user(info.context, self.updated_by_id)

    @strawberry.field
    async def tags(self, info: strawberry.Info[Context, None]) -> list[Tag]:
        models = await info.context.tags_by_post.load(self.key)
        return [Tag(name=model.name) for model in models]


async def _user(context: Context, key: int | None) -> User | None:
    if key is None:
        return None
    model = await context.user_by_id.load(key)
    return None if model is None else User.from_model(model)


@strawberry.type
class PostEdge:
    node: Post


@strawberry.type
class PostConnection:
    edges: list[PostEdge]

    @classmethod
    def of(cls, models: Sequence[PostModel]) -> PostConnection:
        return cls(edges=[PostEdge(node=Post.from_model(model)) for model in models])


@strawberry.type
class UserEdge:
    node: User


@strawberry.type
class UserConnection:
    edges: list[UserEdge]


@strawberry.type
class Query:
    @strawberry.field
    async def posts(self, info: strawberry.Info[Context, None], first: int = 20) -> PostConnection:
        statement = (
            select(PostModel).where(*_VISIBLE_POST)
            .order_by(PostModel.created_at.desc(), PostModel.id.desc()).limit(first)
        )  # fmt: skip
        async with info.context.sessions() as session:
            models = (await session.scalars(statement)).all()
        return PostConnection.of(models)

    @strawberry.field
    async def users(self, info: strawberry.Info[Context, None], first: int = 20) -> UserConnection:
        statement = (
            select(UserModel).where(UserModel.is_active.is_(True))
            .order_by(UserModel.username, UserModel.id).limit(first)
        )  # fmt: skip
        async with info.context.sessions() as session:
            models = (await session.scalars(statement)).all()
        return UserConnection(edges=[UserEdge(node=User.from_model(model)) for model in models])


@dataclass
class Context:
    """Per request: the session factory and fresh loaders (their caches are the request's)."""

    sessions: async_sessionmaker[AsyncSession]
    user_by_id: DataLoader[int, UserModel | None]
    tags_by_post: DataLoader[UUID, list[TagModel]]
    posts_by_author: DataLoader[tuple[int, int], list[PostModel]]

    @classmethod
    def create(cls, sessions: async_sessionmaker[AsyncSession]) -> Context:
        async def users(keys: list[int]) -> list[UserModel | None]:
            statement = select(UserModel).where(UserModel.id.in_(keys), UserModel.is_active)
            async with sessions() as session:
                found = {model.id: model for model in await session.scalars(statement)}
            return [found.get(key) for key in keys]

        async def tags(keys: list[UUID]) -> list[list[TagModel]]:
            statement = (
                select(post_tags.c.post_id, TagModel).join(TagModel)
                .where(post_tags.c.post_id.in_(keys)).order_by(TagModel.name, TagModel.id)
            )  # fmt: skip
            found: dict[UUID, list[TagModel]] = defaultdict(list)
            async with sessions() as session:
                for post_id, tag in await session.execute(statement):
                    found[post_id].append(tag)
            return [found[key] for key in keys]

        async def posts(keys: list[tuple[int, int]]) -> list[list[PostModel]]:
            """Each author's newest ``first`` posts: a window function numbers each
            author's posts, one statement for the whole batch."""
            rank = func.row_number().over(
                partition_by=PostModel.created_by_id,
                order_by=(PostModel.created_at.desc(), PostModel.id.desc()),
            )
            ranked = (
                select(PostModel, rank.label("rank"))
                .where(PostModel.created_by_id.in_({author for author, _ in keys}), *_VISIBLE_POST)
                .subquery()
            )  # fmt: skip
            post = aliased(PostModel, ranked)
            statement = (
                select(post).where(ranked.c.rank <= max(first for _, first in keys))
                .order_by(ranked.c.created_by_id, ranked.c.rank)
            )  # fmt: skip
            found: dict[int | None, list[PostModel]] = defaultdict(list)
            async with sessions() as session:
                for model in await session.scalars(statement):
                    found[model.created_by_id].append(model)
            return [found[author][:first] for author, first in keys]

        return cls(sessions, DataLoader(users), DataLoader(tags), DataLoader(posts))


class _GraphQL(GraphQL[Context, None]):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(strawberry.Schema(query=Query), graphql_ide=None)
        self._sessions = sessions

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context.create(self._sessions)


def create_app() -> Starlette:
    pool_size = int(os.environ.get("BENCH_POOL_SIZE", "32"))
    engine = create_async_engine(
        os.environ["BENCH_DATABASE_URL"], pool_size=pool_size, max_overflow=pool_size
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    graphql = _GraphQL(async_sessionmaker(engine, expire_on_commit=False))
    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/health", health)],
        lifespan=lifespan,
    )
