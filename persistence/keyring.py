"""The keys that wrap users' data keys (KEKs), from settings or, in development, a file.

``AUDITQL_AUDIT_KEKS=k2:<base64 of 32 bytes>,k1:<...>``: the first key wraps new and
rotated data keys, every key unwraps. Each wrapped key records the id of the KEK that
wrapped it, so a KEK can be retired: add a new one in front, run the rotation
(``auditql rotate-audit-keys``), then remove the old one (and destroy every copy of it).

Without the setting, development keeps a generated KEK in a key file
(:mod:`persistence.key_file`) beside the SQLite database, so that a restart reads what
the last run sealed; production refuses to start without it (``gql.settings``).

Ref: https://cryptography.io/en/latest/hazmat/primitives/aead/#cryptography.hazmat.primitives.ciphers.aead.AESGCM
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from persistence import key_file

_DEK_AAD = b"auditql/dek/v1|"
NONCE = 12
KEY = 32
_KEK_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_DEVELOPMENT_KEK = "dev"
"""The id of the KEK development generates, and its name in the key file."""


class UnreadableValueError(ValueError):
    """A sealed value or a wrapped key failed to open: not erased, but altered, or
    opened with other keys than the ones it was sealed with."""


class WrappedKey(NamedTuple):
    kek_id: str
    wrapped: bytes


class KeyRing:
    """The KEKs from settings: the first wraps new and rotated keys, all unwrap."""

    def __init__(self, keks: Iterable[tuple[str, bytes]]) -> None:
        self._keks = {kek_id: AESGCM(kek) for kek_id, kek in keks}
        if not self._keks:
            raise ValueError("a key ring needs at least one key")
        self.primary = next(iter(self._keks))

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """``kid:<base64 of 32 bytes>,...``, as ``AUDITQL_AUDIT_KEKS`` holds them."""
        keks: list[tuple[str, bytes]] = []
        for part in (p.strip() for p in text.split(",") if p.strip()):
            kek_id, _, encoded = part.partition(":")
            if not _KEK_ID.fullmatch(kek_id):
                raise ValueError(f"{kek_id!r} is not a key id (1-32 of A-Z a-z 0-9 _ . -)")
            try:
                kek = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                kek = b""
            if len(kek) != KEY:
                raise ValueError(f"key {kek_id!r} is not the base64 of {KEY} bytes")
            if any(kek_id == seen for seen, _ in keks):
                raise ValueError(f"key id {kek_id!r} appears twice")
            keks.append((kek_id, kek))
        return cls(keks)

    @staticmethod
    def new_kek() -> bytes:
        return AESGCM.generate_key(bit_length=KEY * 8)

    def wrap(self, user_id: int, dek: bytes) -> WrappedKey:
        nonce = os.urandom(NONCE)
        sealed = self._keks[self.primary].encrypt(nonce, dek, _DEK_AAD + str(user_id).encode())
        return WrappedKey(self.primary, nonce + sealed)

    def unwrap(self, user_id: int, key: WrappedKey) -> bytes:
        kek = self._keks.get(key.kek_id)
        if kek is None:
            raise UnreadableValueError(
                f"the key of user {user_id} is wrapped under key {key.kek_id!r}, which "
                "AUDITQL_AUDIT_KEKS does not hold"
            )
        nonce, sealed = key.wrapped[:NONCE], key.wrapped[NONCE:]
        try:
            return kek.decrypt(nonce, sealed, _DEK_AAD + str(user_id).encode())
        except InvalidTag:
            raise UnreadableValueError(
                f"the key of user {user_id} does not unwrap under key {key.kek_id!r}"
            ) from None


def key_ring(keks: str, path: Path) -> KeyRing:
    """The KEKs of the setting ``keks``; without any, the one kept in the key file at
    ``path`` (made on first use; see the module)."""
    if keks.strip():
        return KeyRing.parse(keks)
    kek = key_file.load_or_create(path, _DEVELOPMENT_KEK, KeyRing.new_kek)
    return KeyRing([(_DEVELOPMENT_KEK, kek)])
