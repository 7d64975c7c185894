"""Personal values in audit entries, sealed under per-user keys so they can be erased.

Each user has a data key (DEK, 32 random bytes) in ``user_keys``, wrapped with AES-GCM
under a key-encryption key (KEK) from settings (:class:`KeyRing`). A personal value of
an audit entry, an address, a user agent, a column that a model lists in
``__audit_personal__``, is stored as

    aqe1:<user id>:<base64url(nonce ‖ AES-GCM(DEK, JSON of the value, aad))>

with ``aad = "aqe1|<user id>|<table>.<column>"``, so a sealed value opens only as the
value of that user in that column; in ``changes`` it is wrapped as ``{"$enc": ...}``.
Erasing a user destroys the DEK: their values then read ``[erased]`` everywhere, and
the entries themselves, ciphertext included, stay exactly as they were (so the hash
chain over them still verifies).

A value that does not open under its user's key was not written by this module (it was
moved or edited in the database, or the KEKs in settings are not the ones that wrapped
the keys): that raises :class:`UnreadableValueError` rather than passing for erased.

Ref: https://cryptography.io/en/latest/hazmat/primitives/aead/#cryptography.hazmat.primitives.ciphers.aead.AESGCM
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, insert, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.base import utcnow
from persistence.keyring import KEY, NONCE, KeyRing, UnreadableValueError, WrappedKey
from persistence.models.user_key import UserKey
from persistence.write_guard import auditing

ERASED = "[erased]"
"""What a personal value reads once its user is erased."""
ENCRYPTED = "$enc"
"""The key of a sealed value in an entry's ``changes``: ``{"$enc": "aqe1:..."}``."""
PERSONAL = "auditql.personal"
"""The key of a unit of work's :class:`Sealer` in ``Session.info``."""

_PREFIX = "aqe1"
_KEYS = select(UserKey.user_id, UserKey.kek_id, UserKey.wrapped_dek)


def _aad(user_id: int, where: str) -> bytes:
    return f"{_PREFIX}|{user_id}|{where}".encode()


def seal(dek: bytes, user_id: int, where: str, value: Any) -> str:
    """``value`` (JSON-able) sealed under ``user_id``'s key, for the column ``where``
    (``<table>.<column>``)."""
    nonce = os.urandom(NONCE)
    sealed = AESGCM(dek).encrypt(nonce, orjson.dumps(value), _aad(user_id, where))
    return f"{_PREFIX}:{user_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def owner_of(token: str) -> int | None:
    """The user a sealed value belongs to; None if ``token`` is not a sealed value (a
    plaintext value written before values were sealed)."""
    prefix, _, rest = token.partition(":")
    user_id, _, _ = rest.partition(":")
    return int(user_id) if prefix == _PREFIX and user_id.isdigit() else None


def unseal(token: str, deks: Mapping[int, bytes], where: str) -> Any:
    """The value ``token`` holds, given the keys by user (``load_deks``); ``[erased]``
    when its user's key is not among them. Raises :class:`UnreadableValueError` when
    the key is there and the value does not open under it."""
    user_id = owner_of(token)
    if user_id is None:
        return token
    dek = deks.get(user_id)
    if dek is None:
        return ERASED
    raw = base64.urlsafe_b64decode(token.split(":", 2)[2])
    try:
        plain = AESGCM(dek).decrypt(raw[:NONCE], raw[NONCE:], _aad(user_id, where))
    except InvalidTag:
        raise UnreadableValueError(f"a value of user {user_id} in {where} does not open") from None
    return orjson.loads(plain)


def sealed_owners(
    ip_address: str | None, user_agent: str | None, changes: Mapping[str, Any]
) -> set[int]:
    """The users whose keys opening an entry needs."""
    tokens = [t for t in (ip_address, user_agent) if t is not None]
    tokens += [value[ENCRYPTED] for value in _sealed(changes)]
    return {owner for token in tokens if (owner := owner_of(token)) is not None}


def _sealed(changes: Mapping[str, Any]) -> Iterator[Mapping[str, str]]:
    for pair in changes.values():
        for value in pair:
            if isinstance(value, dict) and ENCRYPTED in value:
                yield value


def open_changes(
    table: str, changes: Mapping[str, Any], deks: Mapping[int, bytes]
) -> dict[str, Any]:
    """An entry's ``changes`` with its sealed values opened (or ``[erased]``)."""

    def opened(column: str, value: Any) -> Any:
        if isinstance(value, dict) and ENCRYPTED in value:
            return unseal(value[ENCRYPTED], deks, f"{table}.{column}")
        return value

    return {column: [opened(column, v) for v in pair] for column, pair in changes.items()}


def open_column(token: str | None, column: str, deks: Mapping[int, bytes]) -> str | None:
    """An entry's ``ip_address`` or ``user_agent`` (``column``), opened."""
    if token is None:
        return None
    value = unseal(token, deks, f"audit_log.{column}")
    return value if isinstance(value, str) else str(value)


async def load_deks(
    session: AsyncSession, keys: KeyRing, user_ids: Iterable[int]
) -> dict[int, bytes]:
    """The unwrapped keys of those of ``user_ids`` that have one: one statement."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = await session.execute(
        _KEYS.where(UserKey.user_id.in_(ids), UserKey.wrapped_dek.is_not(None))
    )
    return {
        uid: keys.unwrap(uid, key)
        for uid, kek_id, wrapped in rows
        if (key := _stored(kek_id, wrapped))
    }


def _stored(kek_id: str | None, wrapped: bytes | None) -> WrappedKey | None:
    """A key as ``user_keys`` holds it; None for an erased user's tombstone."""
    return None if kek_id is None or wrapped is None else WrappedKey(kek_id, bytes(wrapped))


def loaded_key(user: Any) -> WrappedKey | None:
    """The wrapped key of ``user`` if it was loaded with it (``User.data_key``), without
    loading anything; None if it was not, or the user has none."""
    key = inspect(user).dict.get("data_key")
    if key is None or key.wrapped_dek is None or key.kek_id is None:
        return None
    return WrappedKey(key.kek_id, key.wrapped_dek)


@dataclass
class Sealer:
    """One unit of work's keys: the users' DEKs it has read or made, and the actor's
    sealed address and user agent, sealed once for all its entries.

    :meth:`prepare` makes sure the keys of a flush's subjects are known before its
    entries are built: with one SELECT for those it does not know yet, and one INSERT
    for new users (and for users from before sealing, who have no key yet)."""

    ring: KeyRing | None
    actor_id: int | None
    actor_key: WrappedKey | None = None
    _deks: dict[int, bytes | None] = field(default_factory=dict)
    """By user: the DEK, or None for an erased user."""
    _actor_fields: tuple[str | None, str | None] | None = None

    def __post_init__(self) -> None:
        if self.actor_id is not None and self.actor_key is not None:
            self._deks[self.actor_id] = self.keys.unwrap(self.actor_id, self.actor_key)

    @property
    def keys(self) -> KeyRing:
        if self.ring is None:
            raise RuntimeError("this Database holds no audit keys (Database.keys)")
        return self.ring

    def prepare(
        self, connection: Connection, subjects: Iterable[int], new: Iterable[int] = ()
    ) -> None:
        """Know the keys of ``subjects``; make keys for ``new`` users (just inserted)."""
        fresh = [uid for uid in dict.fromkeys(new) if uid not in self._deks]
        if fresh:
            self._create(connection, fresh, conflicts=False)
        unknown = sorted({uid for uid in subjects if uid not in self._deks})
        if not unknown:
            return
        self._read(connection, unknown)
        missing = [uid for uid in unknown if uid not in self._deks]
        if missing:  # users from before sealing: their first sealed write makes their key
            self._create(connection, missing, conflicts=True)
            self._read(connection, [uid for uid in missing if uid not in self._deks])

    def seal(self, user_id: int | None, where: str, value: Any) -> Any:
        """``value`` as ``changes`` records it: sealed under ``user_id``'s key, or
        ``[erased]`` if that user is erased, or without a user to belong to."""
        dek = None if user_id is None else self._deks[user_id]
        if dek is None:
            return ERASED
        return {ENCRYPTED: seal(dek, user_id, where, value)}  # type: ignore[arg-type]

    def actor_fields(
        self, ip_address: str | None, user_agent: str | None
    ) -> tuple[str | None, str | None]:
        """The actor's address and user agent as entries store them: sealed under the
        actor's key; null without an actor, or once the actor is erased."""
        if self._actor_fields is None:
            dek = None if self.actor_id is None else self._deks.get(self.actor_id)
            if dek is None or self.actor_id is None:
                self._actor_fields = (None, None)
            else:
                self._actor_fields = tuple(  # type: ignore[assignment]
                    None
                    if value is None
                    else seal(dek, self.actor_id, f"audit_log.{column}", value)
                    for column, value in (("ip_address", ip_address), ("user_agent", user_agent))
                )
        return self._actor_fields  # type: ignore[return-value]

    def destroy(self, connection: Connection, user_id: int) -> bool:
        """Erase ``user_id``'s key, leaving its tombstone; False if it was erased already."""
        now = utcnow()
        with auditing():
            erased = connection.execute(
                update(UserKey)
                .where(UserKey.user_id == user_id, UserKey.erased_at.is_(None))
                .values(kek_id=None, wrapped_dek=None, erased_at=now, updated_at=now)
            ).rowcount
            if not erased:  # a user from before sealing, with no key yet: a tombstone
                tombstone = {"user_id": user_id, "erased_at": now, "created_at": now}
                statement = _insert(connection, conflicts=True).values(updated_at=now, **tombstone)
                erased = connection.execute(statement).rowcount
        self._deks[user_id] = None
        if user_id == self.actor_id:
            self._actor_fields = None
        return bool(erased)

    def _read(self, connection: Connection, user_ids: list[int]) -> None:
        if not user_ids:
            return
        rows = connection.execute(_KEYS.where(UserKey.user_id.in_(user_ids)))
        for uid, kek_id, wrapped in rows:
            key = _stored(kek_id, wrapped)
            self._deks[uid] = None if key is None else self.keys.unwrap(uid, key)

    def _create(self, connection: Connection, user_ids: list[int], *, conflicts: bool) -> None:
        now = utcnow()
        deks = {uid: os.urandom(KEY) for uid in user_ids}
        rows = []
        for uid, dek in deks.items():
            kek_id, wrapped = self.keys.wrap(uid, dek)
            rows.append({"user_id": uid, "kek_id": kek_id, "wrapped_dek": wrapped,
                         "created_at": now, "updated_at": now})  # fmt: skip
        with auditing():
            if conflicts:  # another unit of work may be making the same key: read theirs
                created = connection.execute(
                    _insert(connection, conflicts=True).returning(UserKey.user_id), rows
                )
                made = set(created.scalars())
            else:
                connection.execute(insert(UserKey), rows)
                made = set(deks)
        self._deks.update({uid: deks[uid] for uid in made})


def _insert(connection: Connection, *, conflicts: bool) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(UserKey)
    return statement.on_conflict_do_nothing(index_elements=["user_id"]) if conflicts else statement


def sealer_of(session: Any) -> Sealer:
    sealer = session.info.get(PERSONAL)
    if not isinstance(sealer, Sealer):
        raise RuntimeError("writes must go through a UnitOfWork, which holds the keys")
    return sealer


async def rotate(session: AsyncSession, keys: KeyRing, *, batch: int = 500) -> int:
    """Re-wrap up to ``batch`` keys not wrapped under the primary KEK under it; how many.
    Call until it returns 0, committing in between."""
    rows = (
        await session.execute(
            _KEYS.where(UserKey.wrapped_dek.is_not(None), UserKey.kek_id != keys.primary)
            .order_by(UserKey.user_id)
            .limit(batch)
            .with_for_update()
        )
    ).all()
    now = utcnow()
    with auditing():
        for uid, kek_id, wrapped in rows:
            key = _stored(kek_id, wrapped)
            assert key is not None  # the statement selects keys only
            kek_id, wrapped = keys.wrap(uid, keys.unwrap(uid, key))
            await session.execute(
                update(UserKey)
                .where(UserKey.user_id == uid)
                .values(kek_id=kek_id, wrapped_dek=wrapped, updated_at=now)
            )
    return len(rows)
