"""The audit chain's canonical form, version 1: what a hash covers, byte for byte.

An entry's content is the JSON object of its stored columns, every key present (an
absent value is ``null``), serialised by RFC 8785 (JSON Canonicalization Scheme), so
that any JCS implementation recomputes the same bytes::

    {"action": "update", "actor_id": 17, "changes": {...}, "created_at":
     "2026-12-06T05:30:00.123456Z", "entity_id": "...", "entity_type": "posts",
     "id": "0193...", "ip_address": ..., "request_id": ..., "user_agent": ..., "v": 1}

    entry_hash(e)  = SHA-256("auditql/entry/v1" 0x00 JCS(e))
    chain_hash(0)  = SHA-256("auditql/genesis/v1" 0x00 trail id, 16 bytes)
    chain_hash(p)  = SHA-256("auditql/chain/v1" 0x00 chain_hash(p-1) be64(p)
                             be64(committed_at, microseconds since the epoch)
                             entry_hash(p))

Date-times are UTC with six fractional digits and ``Z``; ids are lower-case hyphenated
UUIDs. Values are hashed as the database returns them (the sequencer reads rows back),
so ciphertext is covered, never the plaintext it hides.
Ref: https://www.rfc-editor.org/rfc/rfc8785
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import rfc8785

VERSION = 1
_ENTRY = b"auditql/entry/v1\x00"
_CHAIN = b"auditql/chain/v1\x00"
_GENESIS = b"auditql/genesis/v1\x00"
_SAFE_INTEGER = 2**53 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

COLUMNS = (
    "id", "created_at", "actor_id", "action", "entity_type", "entity_id", "changes",
    "request_id", "ip_address", "user_agent",
)  # fmt: skip
"""The audit_log columns an entry's hash covers."""


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds; a naive value (SQLite) is taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def content(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The canonical object of an audit_log row as stored."""
    return {
        "v": VERSION,
        "id": _uuid(row["id"]),
        "created_at": timestamp(row["created_at"]),
        "actor_id": row["actor_id"],
        "action": row["action"],
        "entity_type": row["entity_type"],
        "entity_id": row["entity_id"],
        "changes": row["changes"],
        "request_id": row["request_id"],
        "ip_address": row["ip_address"],
        "user_agent": row["user_agent"],
    }


def _uuid(value: Any) -> str:
    """Lower-case and hyphenated, whichever form the driver returns."""
    return str(value) if isinstance(value, UUID) else str(UUID(str(value)))


def jcs(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``.

    orjson with sorted keys writes the same bytes for ASCII keys, integers within
    ±(2**53-1) and no floats (all an entry usually holds), fifty times faster; anything
    else goes through the reference implementation."""
    if _orjson_agrees(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(value)


def entry_hash(row: Mapping[Any, Any]) -> bytes:
    return hashlib.sha256(_ENTRY + jcs(content(row))).digest()


def genesis(trail: UUID) -> bytes:
    return hashlib.sha256(_GENESIS + trail.bytes).digest()


def link(previous: bytes, position: int, committed_at: datetime, entry: bytes) -> bytes:
    return hashlib.sha256(
        _CHAIN + previous + struct.pack(">qq", position, micros(committed_at)) + entry
    ).digest()


def micros(value: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _orjson_agrees(value: Any) -> bool:
    # Iterative, by exact type: this runs on every entry the sequencer and verify hash.
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_SAFE_INTEGER <= item <= _SAFE_INTEGER:
                return False
        elif kind is dict:
            if not all(key.isascii() for key in item):
                return False
            pending.extend(item.values())
        elif kind is list:
            pending.extend(item)
        else:
            return False  # floats, and anything JSON cannot hold (the reference refuses it)
    return True
