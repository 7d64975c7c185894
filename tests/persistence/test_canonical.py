"""The audit chain's canonical form: byte-for-byte RFC 8785, whichever serialiser
writes it, and hashes anyone can recompute from the documented formula."""

from __future__ import annotations

import hashlib
import random
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
import rfc8785

from persistence import canonical

EDGES: list[Any] = [
    "",
    "\u0000\u001f\u007f\u2028\u2029",
    '"\\/\b\f\n\r\t',
    "é€𝄞",
    "\ud7ff\ue000\uffff",
    2**53 - 1,
    -(2**53 - 1),
    0,
    True,
    False,
    None,
    [],
    {},
    {"b": 1, "a": [None, {"d": "x", "c": []}], "A": "upper before lower", "_": 0},
    1.5,  # floats take the reference implementation
    {"€": "a non-ASCII key"},
]


def _scalar(rng: random.Random) -> str:
    while True:
        code = rng.choice([rng.randrange(0x20), rng.randrange(0x80), rng.randrange(0x110000)])
        if not 0xD800 <= code <= 0xDFFF:  # surrogates are not characters
            return chr(code)


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:  # any Unicode scalar value, control characters often
        return "".join(_scalar(rng) for _ in range(rng.randrange(8)))
    if kind == 1:
        return rng.randrange(-(2**53) + 1, 2**53)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice(["create", "update", "[redacted]", "2026-01-01T00:00:00+00:00"])
    if kind == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        f"k{rng.randrange(100)}": _random_value(rng, depth + 1) for _ in range(rng.randrange(4))
    }


@pytest.mark.parametrize("value", EDGES, ids=range(len(EDGES)))
def test_edge_values_serialise_as_the_reference_does(value: Any) -> None:
    assert canonical.jcs(value) == rfc8785.dumps(value)


def test_integers_json_cannot_carry_exactly_are_refused() -> None:
    """Audit entries record them as strings (persistence.audit), so none reaches here."""
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical.jcs({"big": 2**53})


def test_generated_values_serialise_as_the_reference_does() -> None:
    rng = random.Random(15)
    for _ in range(2000):
        value = _random_value(rng)
        assert canonical.jcs(value) == rfc8785.dumps(value), value


def test_timestamps_are_utc_with_microseconds_whatever_the_offset() -> None:
    at = datetime(2026, 12, 6, 7, 30, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert canonical.timestamp(at) == "2026-12-06T05:30:00.000005Z"
    assert canonical.timestamp(at.astimezone(UTC).replace(tzinfo=None)) == canonical.timestamp(at)
    assert canonical.micros(datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC)) == 1_000_001


def test_hashes_follow_the_documented_formula() -> None:
    """The README's recipe, written out with hashlib and rfc8785 alone."""
    trail = UUID("01939b6e-0000-7000-8000-000000000001")
    row = {
        "id": UUID("01939b6e-1111-7000-8000-000000000002"),
        "created_at": datetime(2026, 12, 6, 5, 30, tzinfo=UTC),
        "actor_id": 17, "action": "update", "entity_type": "posts",
        "entity_id": "01939b6e-2222-7000-8000-000000000003",
        "changes": {"title": ["Old", "New"]},
        "request_id": None, "ip_address": None, "user_agent": None,
    }  # fmt: skip
    content: dict[str, Any] = {
        "v": 1, "id": "01939b6e-1111-7000-8000-000000000002",
        "created_at": "2026-12-06T05:30:00.000000Z", "actor_id": 17, "action": "update",
        "entity_type": "posts", "entity_id": "01939b6e-2222-7000-8000-000000000003",
        "changes": {"title": ["Old", "New"]}, "request_id": None, "ip_address": None,
        "user_agent": None,
    }  # fmt: skip
    entry = hashlib.sha256(b"auditql/entry/v1\x00" + rfc8785.dumps(content)).digest()
    genesis = hashlib.sha256(b"auditql/genesis/v1\x00" + trail.bytes).digest()
    committed = datetime(2026, 12, 6, 5, 30, 0, 250_000, tzinfo=UTC)
    micros = int(committed.timestamp()) * 1_000_000 + committed.microsecond
    first = hashlib.sha256(
        b"auditql/chain/v1\x00" + genesis + struct.pack(">qq", 1, micros) + entry
    ).digest()

    assert canonical.entry_hash(row) == entry
    assert canonical.genesis(trail) == genesis
    assert (
        canonical.link(canonical.genesis(trail), 1, committed, canonical.entry_hash(row)) == first
    )
