from __future__ import annotations

from sqlalchemy import ColumnElement, func

from persistence.models.user import User
from persistence.pagination import asc
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

    @staticmethod
    def named(username: str) -> ColumnElement[bool]:
        """The user called ``username``, ignoring case as the unique index does (the
        database lowers both sides, so they agree on every character)."""
        return func.lower(User.username) == func.lower(username)
