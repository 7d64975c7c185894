from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func

from persistence.models.user import User
from persistence.pagination import SearchResult, asc
from persistence.repositories.text import contains
from persistence.repository import BaseRepository
from persistence.validation import text_problem


class UserRepository(BaseRepository[User]):
    model = User
    default_order = (asc(User.username),)
    sortable = frozenset({"username", "created_at"})

    async def find_by_email(self, email: str) -> User | None:
        """None for an email no row can hold (a NUL, a lone surrogate): ``login`` passes
        what the client typed, and PostgreSQL would refuse to compare it."""
        email = email.strip().lower()
        if text_problem(email) is not None:
            return None
        return await self.get_one_by(email=email)

    async def find_by_username(self, username: str) -> User | None:
        return await self.get_one_by(func.lower(User.username) == username.lower())

    async def find_active_users(self, *, limit: int | None = None) -> Sequence[User]:
        return await self.list(is_active=True, limit=limit)

    async def find_superusers(self) -> Sequence[User]:
        return await self.list(is_superuser=True)

    async def search_by_name(
        self, text: str, *, page: int = 1, page_size: int = 20
    ) -> SearchResult[User]:
        """Users whose username or full name contains ``text`` (case-insensitive)."""
        return await self.search(
            contains([User.username, User.full_name], text), page=page, page_size=page_size
        )

    async def email_exists(self, email: str) -> bool:
        return await self.exists(email=email.strip().lower())

    async def username_exists(self, username: str) -> bool:
        return await self.exists(func.lower(User.username) == username.lower())
