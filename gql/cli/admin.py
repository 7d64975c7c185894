"""What the operator commands do: users, tokens and demo data, through units of work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from domain import tokens, users
from gql.settings import Settings
from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.engine import Database
from persistence.errors import NotFoundError
from persistence.models import Comment, FeatureFlag, Post, PostStatus, Tag, User
from persistence.repositories.comment import CommentRepository
from persistence.repositories.feature_flag import FeatureFlagRepository
from persistence.repositories.post import PostRepository
from persistence.repositories.tag import TagRepository
from persistence.repositories.user import UserRepository
from persistence.unit_of_work import UnitOfWork

_BATCH = 500


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(settings)
    try:
        yield database
    finally:
        await database.dispose()


async def create_user(
    settings: Settings,
    email: str,
    username: str,
    full_name: str,
    password: str | None,
    *,
    superuser: bool,
) -> int:
    """The new user's id; the same rules as the API's ``createUser``, as the system."""
    async with _database(settings) as database, UnitOfWork(database, AuditContext(None)) as uow:
        user = await users.create_user(
            uow, None, email=email, username=username, full_name=full_name,
            password=password, is_superuser=superuser,
        )  # fmt: skip
        return user.id


async def create_token(
    settings: Settings, email: str, name: str, expires_in_days: int | None
) -> str:
    """A new token's secret, issued as the API's ``createApiToken`` issues it."""
    async with _database(settings) as database:
        async with database.reader() as session:
            user = await UserRepository(session).find_by_email(email)
        if user is None:
            raise NotFoundError("user", email)
        async with UnitOfWork(database, AuditContext(actor_id=user.id)) as uow:
            secret, _ = await tokens.issue_token(uow, user, name, expires_in_days)
            return secret


async def seed_demo(
    settings: Settings, *, count: int = 0, progress: Callable[[int], object] = lambda _: None
) -> str:
    """Demo data, written by its authors so that stamps and history look real; ``count``
    more posts with a comment each, in bulk, reporting progress per batch."""
    async with _database(settings) as database:
        async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
            users = UserRepository(uow.session)
            admin = await users.add(User(email="admin@example.com", username="admin",
                                         full_name="Demo Admin", is_superuser=True))  # fmt: skip
            ada = await users.add(User(email="ada@example.com", username="ada",
                                       full_name="Ada Lovelace"))  # fmt: skip
        async with UnitOfWork(database, AuditContext(actor_id=admin.id)) as uow:
            tags = TagRepository(uow.session)
            news = await tags.add(Tag(name="news", color="#2563eb"))
            howto = await tags.add(Tag(name="how-to", color="#16a34a"))
            await FeatureFlagRepository(uow.session).add(
                FeatureFlag(key="new-editor", name="New editor", enabled=True,
                            rollout_percentage=50)
            )  # fmt: skip
            token, _ = await tokens.issue_token(uow, admin, "demo", 30)
        async with UnitOfWork(database, AuditContext(actor_id=ada.id)) as uow:
            posts = PostRepository(uow.session)
            hello = await posts.add(
                Post(title="Hello, auditql", slug="hello-auditql", body="Every change is kept.",
                     status=PostStatus.PUBLISHED, published_at=utcnow())
            )  # fmt: skip
            await posts.add(Post(title="A draft", slug="a-draft", body="Only Ada sees this."))
            await TagRepository(uow.session).set_post_tags(hello.id, [news.id, howto.id])
            await CommentRepository(uow.session).add(Comment(post_id=hello.id, body="First!"))
        for start in range(0, count, _BATCH):
            size = min(_BATCH, count - start)
            async with UnitOfWork(database, AuditContext(actor_id=ada.id)) as uow:
                generated = await PostRepository(uow.session).add_many(
                    [Post(title=f"Generated post {start + n + 1}",
                          slug=f"generated-{start + n + 1}", body="Lorem ipsum.",
                          status=PostStatus.PUBLISHED, published_at=utcnow())
                     for n in range(size)]
                )  # fmt: skip
                await CommentRepository(uow.session).add_many(
                    [Comment(post_id=post.id, body="Nice.") for post in generated]
                )
            progress(size)
        return token
