from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple, TypeVar, cast
from uuid import UUID

from sqlalchemy import bindparam, inspect, or_, select
from sqlalchemy.orm import contains_eager, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict, set_committed_value

from persistence.base import Base
from persistence.models.api_token import ApiToken
from persistence.models.user import User
from persistence.models.user_key import UserKey
from persistence.pagination import desc
from persistence.repository import BaseRepository

T = TypeVar("T", bound=Base)


class ValidToken(NamedTuple):
    token_id: UUID
    last_used_at: datetime | None
    expires_at: datetime | None
    user: User

    def copied(self) -> ValidToken:
        """The same token with a detached copy of its user (and data key), for a request
        of its own: a request may attach its viewer to a session, which one shared
        object could only be in at a time."""
        return self._replace(user=_detached_copy(self.user))


def _detached_copy(user: User) -> User:
    copy = _copy_columns(user)
    key = inspect(user).dict.get("data_key")
    set_committed_value(copy, "data_key", None if key is None else _copy_columns(key))
    return copy


def _copy_columns(obj: T) -> T:
    """A detached instance with ``obj``'s loaded column values, set as a query sets
    them: without the constructor's change events, at a third of its cost."""
    state = inspect(obj)
    copy = cast(T, state.manager.new_instance())
    values = instance_dict(copy)
    for attr in state.mapper.column_attrs:
        if attr.key in state.dict:
            values[attr.key] = state.dict[attr.key]
    make_transient_to_detached(copy)
    return copy


# Built once: every authenticated request runs it, and building it cost more than
# the rest of authentication. The token's two columns are all a request needs of it;
# the user comes with their data key, which the request's units of work seal with.
_VALID_TOKENS = (
    select(ApiToken.id, ApiToken.last_used_at, ApiToken.expires_at, User)
    .join(User, User.id == ApiToken.user_id)
    .outerjoin(UserKey, UserKey.user_id == User.id)
    .options(contains_eager(User.data_key))
    .where(
        ApiToken.revoked_at.is_(None),
        or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > bindparam("now")),
        User.is_active.is_(True),
    )
)
_VALID_TOKEN = _VALID_TOKENS.where(ApiToken.token_hash == bindparam("token_hash"))


class ApiTokenRepository(BaseRepository[ApiToken]):
    model = ApiToken
    default_order = (desc(ApiToken.created_at),)

    async def find_valid(self, token_hash: str, now: datetime) -> ValidToken | None:
        """The token with this hash and its user (with ``User.data_key``), if the token
        is neither revoked nor expired and the user is active: one statement, looked up
        by the hash."""
        params = {"token_hash": token_hash, "now": now}
        row = (await self.session.execute(_VALID_TOKEN, params)).one_or_none()
        return None if row is None else ValidToken(*row)

    async def still_valid(self, token_ids: Collection[UUID], now: datetime) -> dict[UUID, User]:
        """Of these tokens, those still valid (as :meth:`find_valid` means it), with their
        users as they are now: one statement for all."""
        if not token_ids:
            return {}
        stmt = _VALID_TOKENS.where(ApiToken.id.in_(token_ids))
        rows = await self.session.execute(stmt, {"now": now})
        return {token_id: user for token_id, _last_used_at, _expires_at, user in rows}
