"""The token cache on its own clock: an entry serves for ``seconds`` after it was read,
never past the token's expiry, hands out copies, and is forgotten when a unit of work
writes a user or a token."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from domain.token_cache import TokenCache
from persistence.base import utcnow
from persistence.engine import Committed
from persistence.models import User
from persistence.models.user_key import UserKey
from persistence.repositories.api_token import ValidToken


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def token(expires_in: timedelta | None = None) -> ValidToken:
    user = User(id=7, email="ada@example.com", username="ada", full_name="Ada", is_active=True)
    make_transient_to_detached(user)
    key = UserKey(user_id=7, wrapped_dek=b"k", kek_id="kek-1")
    make_transient_to_detached(key)
    set_committed_value(user, "data_key", key)
    expires_at = None if expires_in is None else utcnow() + expires_in
    return ValidToken(uuid4(), None, expires_at, user)


def test_an_entry_serves_for_its_seconds_then_is_read_again() -> None:
    clock = Clock()
    cache = TokenCache(1.0, clock=clock)
    cache.put("h", token())
    clock.now += 0.99
    assert cache.get("h", utcnow()) is not None
    clock.now += 0.01
    assert cache.get("h", utcnow()) is None


def test_an_expired_token_is_not_served() -> None:
    cache = TokenCache(60.0, clock=Clock())
    cache.put("h", token(expires_in=timedelta(seconds=5)))
    assert cache.get("h", utcnow()) is not None
    assert cache.get("h", utcnow() + timedelta(seconds=5)) is None


def test_each_request_gets_a_detached_copy_of_the_user_and_key() -> None:
    cache = TokenCache(60.0, clock=Clock())
    read = token()
    cache.put("h", read)
    first, second = cache.get("h", utcnow()), cache.get("h", utcnow())
    assert first is not None
    assert second is not None
    assert first.user is not second.user
    assert first.user is not read.user
    assert (first.user.id, first.user.username) == (7, "ada")
    assert first.user.data_key is not None
    assert first.user.data_key is not read.user.data_key
    assert first.user.data_key.wrapped_dek == b"k"
    assert inspect(first.user).detached
    assert inspect(first.user.data_key).detached


def test_writing_a_user_or_a_token_forgets_every_token() -> None:
    cache = TokenCache(60.0, clock=Clock())
    cache.put("h", token())
    cache.committed(Committed(frozenset({"posts", "comments"}), chained=False))
    assert cache.get("h", utcnow()) is not None
    for table in ("users", "api_tokens", "user_keys"):
        cache.put("h", token())
        cache.committed(Committed(frozenset({"posts", table}), chained=False))
        assert cache.get("h", utcnow()) is None


def test_no_seconds_keeps_nothing() -> None:
    cache = TokenCache(0, clock=Clock())
    cache.put("h", token())
    assert cache.get("h", utcnow()) is None
