"""Passwords and API tokens: what is stored is never what is secret.

Passwords are hashed with argon2id (argon2-cffi's defaults: RFC 9106's second
recommended profile — time cost 3, memory 64 MiB, parallelism 4). API tokens are 32
random bytes behind a short recognisable prefix; only their SHA-256 is stored, and a
presented token is found by looking its hash up, so no secret is ever compared in
Python and no comparison can be timed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_PREFIX = "aq_"
_TOKEN_BYTES = 32
_SHOWN_PREFIX = len(TOKEN_PREFIX) + 6

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A hash of a random password, verified against when an account has no password
    (or the email is unknown), so that every failed login costs the same time."""
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; always spends one argon2 verification."""
    # surrogatepass: text no password can hold (a lone surrogate) still costs one
    # verification, and simply does not match.
    secret = password.encode("utf-8", "surrogatepass")
    try:
        return _hasher.verify(password_hash or _dummy_hash(), secret) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class NewToken:
    secret: str
    """Shown to the user once; never stored."""
    prefix: str
    """The first characters, stored to help people tell their tokens apart."""
    hash: str


def new_token() -> NewToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    return NewToken(secret=secret, prefix=secret[:_SHOWN_PREFIX], hash=hash_token(secret))


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
