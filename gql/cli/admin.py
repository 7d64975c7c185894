"""What the operator commands do: users, tokens and demo data, through units of work."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from domain import tokens, users
from gql.cli.database import opened
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
_GENERATED = "generated-"  # the slugs of generated posts: generated-1, generated-2, ...
DEMO_SUPERUSER = "admin@example.com"
DEMO_AUTHOR = "ada@example.com"


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
    async with opened(settings) as database, UnitOfWork(database, AuditContext(None)) as uow:
        user = await users.create_user(
            uow, None, email=email, username=username, full_name=full_name,
            password=password, is_superuser=superuser,
        )  # fmt: skip
        return user.id


async def create_token(
    settings: Settings, email: str, name: str, expires_in_days: int | None
) -> str:
    """A new token's secret, issued as the API's ``createApiToken`` issues it."""
    async with opened(settings) as database:
        async with database.reader() as session:
            user = await UserRepository(session).find_by_email(email)
        if user is None:
            raise NotFoundError("user", email)
        async with UnitOfWork(database, AuditContext(actor_id=user.id)) as uow:
            secret, _ = await tokens.issue_token(uow, user, name, expires_in_days)
            return secret


class Seeded(NamedTuple):
    token: str
    """A new token of the demo superuser."""
    created: bool
    """False when the demo data was there already (and was kept)."""


async def seed_demo(
    settings: Settings, *, count: int = 0, progress: Callable[[int], object] = lambda _: None
) -> Seeded:
    """Demo data, unless it is there already, ``count`` more generated posts, and a new
    token for the demo superuser."""
    async with opened(settings) as database:
        existing = await _demo_users(database)
        admin, author = existing or await _create_demo_data(database)
        await _generate_posts(database, author, count, progress)
        async with UnitOfWork(database, AuditContext(actor_id=admin.id)) as uow:
            token, _ = await tokens.issue_token(uow, admin, "demo", 30)
        return Seeded(token, created=existing is None)


async def _demo_users(database: Database) -> tuple[User, User] | None:
    """The demo superuser and author, when the demo data is there."""
    async with database.reader() as session:
        users = UserRepository(session)
        admin = await users.find_by_email(DEMO_SUPERUSER)
        author = await users.find_by_email(DEMO_AUTHOR)
    return (admin, author) if admin and author else None


async def _create_demo_data(database: Database) -> tuple[User, User]:
    """Demo data, written by its authors so that stamps and history look real: the
    superuser and the author of the posts."""
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        users = UserRepository(uow.session)
        admin = await users.add(User(email=DEMO_SUPERUSER, username="admin",
                                     full_name="Demo Admin", is_superuser=True))  # fmt: skip
        ada = await users.add(User(email=DEMO_AUTHOR, username="ada",
                                   full_name="Ada Lovelace"))  # fmt: skip
    async with UnitOfWork(database, AuditContext(actor_id=admin.id)) as uow:
        tags = TagRepository(uow.session)
        news = await tags.add(Tag(name="news", color="#2563eb"))
        howto = await tags.add(Tag(name="how-to", color="#16a34a"))
        await FeatureFlagRepository(uow.session).add(
            FeatureFlag(key="new-editor", name="New editor", enabled=True,
                        rollout_percentage=50)
        )  # fmt: skip
    async with UnitOfWork(database, AuditContext(actor_id=ada.id)) as uow:
        posts = PostRepository(uow.session)
        hello = await posts.add(
            Post(title="Hello, auditql", slug="hello-auditql", body="Every change is kept.",
                 status=PostStatus.PUBLISHED, published_at=utcnow())
        )  # fmt: skip
        await posts.add(Post(title="A draft", slug="a-draft", body="Only Ada sees this."))
        await TagRepository(uow.session).set_post_tags(hello.id, [news.id, howto.id])
        await CommentRepository(uow.session).add(Comment(post_id=hello.id, body="First!"))
    return admin, ada


async def _generate_posts(
    database: Database, author: User, count: int, progress: Callable[[int], object]
) -> None:
    """``count`` published posts with a comment each, in bulk, numbered on from those
    generated before; reports progress per batch."""
    async with database.reader() as session:
        before = await PostRepository(session).count(
            Post.slug.startswith(_GENERATED), include_deleted=True
        )
    for start in range(before, before + count, _BATCH):
        numbers = range(start + 1, min(start + _BATCH, before + count) + 1)
        async with UnitOfWork(database, AuditContext(actor_id=author.id)) as uow:
            generated = await PostRepository(uow.session).add_many(
                [Post(title=f"Generated post {n}", slug=f"{_GENERATED}{n}", body="Lorem ipsum.",
                      status=PostStatus.PUBLISHED, published_at=utcnow())
                 for n in numbers]
            )  # fmt: skip
            await CommentRepository(uow.session).add_many(
                [Comment(post_id=post.id, body="Nice.") for post in generated]
            )
        progress(len(numbers))
