"""UUIDv7 primary keys that sort by creation time and never run ahead of the clock.

``uuid6.uuid7()`` stays monotonic by adding a whole millisecond to the timestamp for
every id made within the same millisecond: 100,000 ids made in 0.3 s carry a timestamp
100 s in the future. Bulk inserts make ids that fast, so this module lays the bits out
differently, as RFC 9562 section 6.2 allows:

- ``unix_ts_ms`` (48 bits): milliseconds since the epoch;
- ``rand_a`` (12 bits): the sub-millisecond fraction of the clock (method 3), so the
  timestamp has a resolution of about 244 ns;
- the top 18 bits of ``rand_b``: a counter (method 1), seeded at random with its top bit
  clear at every new clock tick and incremented within a tick;
- the remaining 44 bits: random.

Only when more than 131,072 ids are made within one 244 ns tick does the clock part
move ahead, by one tick. Ids made in one process are strictly increasing. Never derive
a time from an id: use the ``created_at`` column.
"""

from __future__ import annotations

import secrets
import threading
import time

from uuid6 import UUID

_SUBSEC_BITS = 12
_COUNTER_BITS = 18
_RANDOM_BITS = 44
_SUBSEC_STEPS = 1 << _SUBSEC_BITS
_COUNTER_LIMIT = 1 << _COUNTER_BITS


class _Generator:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_tick = -1
        self._counter = 0

    def next(self) -> UUID:
        ns = time.time_ns()
        tick = (ns // 1_000_000) << _SUBSEC_BITS | (ns % 1_000_000) * _SUBSEC_STEPS // 1_000_000
        # One draw for the random bits and, at a new tick, the counter's seed.
        bits = secrets.randbits(_RANDOM_BITS + _COUNTER_BITS - 1)
        random_bits = bits & ((1 << _RANDOM_BITS) - 1)
        with self._lock:
            if tick > self._last_tick:
                self._counter = bits >> _RANDOM_BITS
            else:
                # Same tick, or the clock stepped back: keep the last tick and count on.
                tick = self._last_tick
                self._counter += 1
                if self._counter == _COUNTER_LIMIT:
                    tick += 1
                    self._counter = secrets.randbits(_COUNTER_BITS - 1)
            self._last_tick = tick
            counter = self._counter
        ms, subsec = tick >> _SUBSEC_BITS, tick & (_SUBSEC_STEPS - 1)
        value = (ms & 0xFFFF_FFFF_FFFF) << 80 | subsec << 64 | counter << _RANDOM_BITS | random_bits
        # UUID(version=7) writes the version and variant bits over bits 76-79 and 62-63,
        # which this layout leaves free.
        return UUID(int=value, version=7)


uuid7 = _Generator().next
"""Return a new UUIDv7, strictly greater than every id this process made before."""
