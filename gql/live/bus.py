"""This process's fan-out of committed events to its subscriptions.

A subscription asks for one *topic*; the bus hands an event to the subscriptions of the
event's topics only (a lookup per topic, however many subscribers are idle elsewhere):

- :data:`EVERYTHING`: every event;
- ``("entity", entity_id)``: the entries about one object (its rows' and those of the
  rows it owns, as its ``history``);
- ``("child", entity_type, column, value)``: new rows whose ``column`` is ``value`` (a
  new comment's post, say).

Each subscription buffers at most ``capacity`` events. One that falls further behind is
*overflowed*: it stops receiving at once, and its connection is closed with
:data:`OVERFLOW_CLOSE` so that the client resumes from the last cursor it received.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Final

from persistence.feed import Event

Topic = Hashable

EVERYTHING: Final[Topic] = ("everything",)

OVERFLOW_CLOSE: Final = 1013
"""Try Again Later (RFC 6455): a client retries, resuming from its last cursor."""


def entity_topic(entity_id: str) -> Topic:
    return ("entity", entity_id)


def child_topic(entity_type: str, column: str, value: str) -> Topic:
    return ("child", entity_type, column, value)


def topics_of(event: Event) -> Iterator[Topic]:
    yield EVERYTHING
    yield entity_topic(event.entity_id)
    if event.action == "create":
        for column in event.changes:
            if column.endswith("_id") and isinstance(value := event.recorded(column), str):
                yield child_topic(event.entity_type, column, value)


class OverflowedError(Exception):
    """The subscriber fell more than its capacity behind."""


class Subscription:
    """One subscriber's buffer of live events: those after ``start``, the bus's head
    when it opened."""

    __slots__ = ("_bus", "_events", "_ready", "capacity", "on_overflow", "overflowed", "start",
                 "topic")  # fmt: skip

    def __init__(
        self, bus: Bus, topic: Topic, capacity: int, on_overflow: Callable[[], None]
    ) -> None:
        self._bus = bus
        self.topic = topic
        self.start = bus.head
        self.capacity = capacity
        self.on_overflow = on_overflow
        self.overflowed = False
        self._events: deque[Event] = deque()
        self._ready = asyncio.Event()

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        if len(self._events) >= self.capacity:
            self.overflowed = True
            self._bus.dropped += len(self._events) + 1
            self._events.clear()
            self._bus.close(self)
            self._ready.set()
            self.on_overflow()
            return
        self._events.append(event)
        self._ready.set()

    async def next(self) -> Event:
        """The next live event; raises Overflowed once the subscriber fell behind."""
        while not self._events:
            if self.overflowed:
                raise OverflowedError
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()


class Bus:
    def __init__(self) -> None:
        self.head = 0
        """The position of the last event published."""
        self._by_topic: dict[Topic, set[Subscription]] = {}
        self.dropped = 0
        """Events overflowed subscribers never received."""

    def open(self, topic: Topic, capacity: int, on_overflow: Callable[[], None]) -> Subscription:
        """A subscription to ``topic``'s events after the current head."""
        subscription = Subscription(self, topic, capacity, on_overflow)
        self._by_topic.setdefault(topic, set()).add(subscription)
        return subscription

    def close(self, subscription: Subscription) -> None:
        subscribers = self._by_topic.get(subscription.topic)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._by_topic[subscription.topic]

    def publish(self, events: Iterable[Event]) -> None:
        """Hand each event, in position order, to the subscriptions of its topics."""
        for event in events:
            if event.position <= self.head:
                continue  # read twice by overlapping wake-ups: delivered once
            self.head = event.position
            for topic in topics_of(event):
                for subscription in tuple(self._by_topic.get(topic, ())):
                    subscription.offer(event)

    @property
    def subscriptions(self) -> int:
        return sum(len(subscribers) for subscribers in self._by_topic.values())
