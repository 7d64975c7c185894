"""Signed checkpoints: statements of the chain's head that the database cannot forge.

A checkpoint's *statement* is the RFC 8785 JSON object ::

    {"alg": "ed25519", "chain_hash": "<hex>", "kid": "<key id>", "kind": "interval",
     "made_at": "<RFC 3339>", "position": P, "trail": "<uuid>", "v": 1}

signed as ``"auditql/checkpoint/v1" 0x00 statement`` with Ed25519 (auditors verify
with the public key and cannot sign) or HMAC-SHA256 (whoever verifies can also sign).
The signing key comes from settings and is never stored in the database; every
checkpoint is also logged as one JSON line, so copies live outside the database too.

Keys are written ``<alg>:<key id>:<base64>``: the Ed25519 private key's 32-byte seed
(or its 32-byte public key, to verify only), or the HMAC secret.
Ref: https://cryptography.io/en/latest/hazmat/primitives/asymmetric/ed25519/
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence import canonical
from persistence.base import utcnow
from persistence.ids import uuid7
from persistence.models.audit_chain import AuditCheckpoint, AuditTrail
from persistence.write_guard import auditing

logger = logging.getLogger("auditql.audit.checkpoint")

Kind = Literal["interval", "demand", "cut"]
Algorithm = Literal["ed25519", "hmac-sha256"]
_ALGORITHMS: tuple[Algorithm, ...] = ("ed25519", "hmac-sha256")
_CONTEXT = b"auditql/checkpoint/v1\x00"
_TABLE = cast(Table, AuditCheckpoint.__table__)


class KeySettingError(ValueError):
    """A key setting that cannot be read; the message says which part is wrong."""


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    key_id: str
    algorithm: Algorithm
    material: bytes
    """The Ed25519 public key, or the HMAC secret."""

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.key_id}:{base64.b64encode(self.material).decode()}"

    def verify(self, statement: bytes, signature: bytes) -> bool:
        if self.algorithm == "hmac-sha256":
            return hmac.compare_digest(_hmac(self.material, statement), signature)
        try:
            Ed25519PublicKey.from_public_bytes(self.material).verify(
                signature, _CONTEXT + statement
            )
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str
    algorithm: Algorithm
    secret: bytes

    def sign(self, statement: bytes) -> bytes:
        if self.algorithm == "hmac-sha256":
            return _hmac(self.secret, statement)
        return Ed25519PrivateKey.from_private_bytes(self.secret).sign(_CONTEXT + statement)

    @property
    def verifying(self) -> VerifyingKey:
        if self.algorithm == "hmac-sha256":
            return VerifyingKey(self.key_id, self.algorithm, self.secret)
        public = Ed25519PrivateKey.from_private_bytes(self.secret).public_key()
        raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return VerifyingKey(self.key_id, self.algorithm, raw)

    def __repr__(self) -> str:  # never the secret, in a log or a traceback
        return f"SigningKey({self.algorithm}, {self.key_id!r})"


def _hmac(secret: bytes, statement: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + statement, hashlib.sha256).digest()


def parse_key(value: str) -> tuple[Algorithm, str, bytes]:
    """``<alg>:<key id>:<base64 32 bytes>`` as its parts."""
    algorithm, _, rest = value.strip().partition(":")
    key_id, _, encoded = rest.partition(":")
    if algorithm not in _ALGORITHMS:
        raise KeySettingError(f"a key starts with {' or '.join(_ALGORITHMS)}, not {algorithm!r}")
    if not key_id or len(key_id) > 64:
        raise KeySettingError("a key needs an id of 1 to 64 characters: <alg>:<key id>:<base64>")
    try:
        material = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise KeySettingError(f"key {key_id!r} is not valid base64") from None
    if len(material) != 32:
        raise KeySettingError(f"key {key_id!r} must be 32 bytes, not {len(material)}")
    return algorithm, key_id, material


def signing_key(value: str) -> SigningKey:
    algorithm, key_id, secret = parse_key(value)
    return SigningKey(key_id, algorithm, secret)


def verifying_keys(values: list[str], signing: SigningKey | None) -> dict[str, VerifyingKey]:
    """Every key a checkpoint may be signed with: the current signing key's and the
    retired ones kept to verify old checkpoints."""
    keys = {}
    for value in values:
        algorithm, key_id, material = parse_key(value)
        keys[key_id] = VerifyingKey(key_id, algorithm, material)
    if signing is not None:
        keys[signing.key_id] = signing.verifying
    return keys


def statement(
    trail: UUID, position: int, chain_hash: bytes, kind: Kind, made_at: datetime, key: SigningKey
) -> bytes:
    return canonical.jcs(
        {
            "v": 1,
            "trail": str(trail),
            "position": position,
            "chain_hash": chain_hash.hex(),
            "kind": kind,
            "made_at": canonical.timestamp(made_at),
            "alg": key.algorithm,
            "kid": key.key_id,
        }
    )


class Checkpointer:
    """Signs the head when a checkpoint is due: every ``every_entries`` entries or
    ``every`` of time, whichever comes first, and only if the chain moved."""

    def __init__(self, key: SigningKey, *, every_entries: int, every: timedelta) -> None:
        self.key = key
        self._every_entries = every_entries
        self._every = every
        self._last: tuple[int, datetime] | None = None
        """The last checkpoint seen (position, when): asking the database is needed
        only once this one says a checkpoint is due (another process may have made
        one since)."""

    async def due(self, connection: AsyncConnection, position: int) -> bool:
        """Whether the head at ``position`` is due a checkpoint."""
        if position == 0 or (self._last is not None and not self._due_after(self._last, position)):
            return False
        last = (
            await connection.execute(
                select(_TABLE.c.position, _TABLE.c.created_at)
                .order_by(_TABLE.c.position.desc(), _TABLE.c.created_at.desc())
                .limit(1)
            )
        ).first()
        self._last = None if last is None else (last.position, last.created_at)
        return self._last is None or self._due_after(self._last, position)

    def _due_after(self, last: tuple[int, datetime], position: int) -> bool:
        made_at_position, made_at = last
        return position > made_at_position and (
            position - made_at_position >= self._every_entries or utcnow() - made_at >= self._every
        )

    async def make(
        self, connection: AsyncConnection, position: int, chain_hash: bytes, kind: Kind
    ) -> dict[str, Any]:
        """Sign and store a checkpoint of ``position``, and log it."""
        trail = await connection.scalar(select(AuditTrail.id))
        if trail is None:
            raise RuntimeError("the audit trail has no id: run the migrations")
        made_at = utcnow()
        signed = statement(trail, position, chain_hash, kind, made_at, self.key)
        row = {
            "id": uuid7(),
            "created_at": made_at,
            "position": position,
            "chain_hash": chain_hash,
            "kind": kind,
            "key_id": self.key.key_id,
            "statement": signed,
            "signature": self.key.sign(signed),
        }
        with auditing():
            await connection.execute(_TABLE.insert(), [row])
        self._last = (position, made_at)
        logger.info("audit checkpoint", extra={"checkpoint": exported(row)})
        return row


def exported(row: Any) -> dict[str, str]:
    """A checkpoint as a JSON-safe object: what the log and exports carry."""
    values = row if isinstance(row, dict) else row._mapping
    return {
        "statement": bytes(values["statement"]).decode(),
        "signature": base64.b64encode(bytes(values["signature"])).decode(),
    }


def imported(value: object) -> tuple[bytes, bytes] | None:
    """(statement, signature) of an :func:`exported` checkpoint; None if it is not one."""
    if not isinstance(value, dict):
        return None
    statement, signature = value.get("statement"), value.get("signature")
    if not isinstance(statement, str) or not isinstance(signature, str):
        return None
    try:
        return statement.encode(), base64.b64decode(signature, validate=True)
    except binascii.Error:
        return None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint as read back: what it states, and whether its signature holds."""

    trail: str
    position: int
    chain_hash: bytes
    kind: str
    key_id: str
    trusted: bool

    @classmethod
    def read(
        cls, statement_bytes: bytes, signature: bytes, keys: dict[str, VerifyingKey]
    ) -> Checkpoint:
        body = json.loads(statement_bytes)
        key = keys.get(body["kid"])
        trusted = (
            key is not None
            and key.algorithm == body["alg"]
            and key.verify(statement_bytes, signature)
        )
        return cls(
            body["trail"], body["position"], bytes.fromhex(body["chain_hash"]), body["kind"],
            body["kid"], trusted,
        )  # fmt: skip
