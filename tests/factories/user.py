from __future__ import annotations

import itertools
from typing import Any

from persistence.models import User
from persistence.repositories.user import UserRepository
from persistence.unit_of_work import UnitOfWork

_numbers = itertools.count(1)


async def create_user(uow: UnitOfWork, **overrides: Any) -> User:
    n = next(_numbers)
    values: dict[str, Any] = {
        "email": f"user{n}@example.com",
        "username": f"user{n}",
        "full_name": f"User Number{n}",
    }
    return await UserRepository(uow.session).add(User(**(values | overrides)))
