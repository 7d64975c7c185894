"""Opaque global ids: ``base64url("Post:<key>")``, stable and unique across types.

Clients must treat them as opaque strings; the encoding is not a contract.
"""

from __future__ import annotations

import base64
import binascii
import re
from uuid import UUID

from gql.errors import BadUserInputError

# base64.urlsafe_b64encode, without its two wrapper calls: a page of posts encodes 150.
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def to_global_id(type_name: str, key: UUID | int | str) -> str:
    raw = f"{type_name}:{key.hex if isinstance(key, UUID) else key}"
    return (
        binascii.b2a_base64(raw.encode(), newline=False).translate(_URLSAFE).rstrip(b"=").decode()
    )


def parse_global_id(value: str, argument: str = "id") -> tuple[str, str]:
    """(type name, key as text) of a global id; a malformed id is a BAD_USER_INPUT."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadUserInputError(f"{argument} is not a valid id.") from None
    type_name, sep, key = raw.partition(":")
    if not sep or not type_name or not key:
        raise BadUserInputError(f"{argument} is not a valid id.")
    return type_name, key


def uuid_key(value: str, type_name: str, argument: str = "id") -> UUID:
    """The UUID key of a global id of ``type_name``."""
    found, key = parse_global_id(value, argument)
    try:
        if found == type_name:
            return UUID(hex=key)
    except ValueError:
        pass
    raise _not_of(type_name, argument)


def int_key(value: str, type_name: str, argument: str = "id") -> int:
    """The integer key of a global id of ``type_name`` (users)."""
    found, key = parse_global_id(value, argument)
    if found == type_name and key.isdigit() and len(key) < 19:
        return int(key)
    raise _not_of(type_name, argument)


def _not_of(type_name: str, argument: str) -> BadUserInputError:
    """In words, not the type's name: production messages never name a type the
    document did not (:mod:`gql.engine.redaction`)."""
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", type_name).lower()
    return BadUserInputError(f"{argument} is not the id of a {words}.")
