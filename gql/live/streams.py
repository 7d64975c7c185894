"""A subscription's events: replayed from the trail after its cursor, then live.

The subscription is registered on the bus *before* the replay, at the bus's head H:
everything after H reaches its buffer, and the replay reads the trail up to H. Events
at or before the last one sent are skipped, so none is missed at the seam and none is
sent twice, whichever side of H the cursor is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from sqlalchemy import ColumnElement

from gql.errors import BadUserInputError, NotAllowedError
from gql.live.bus import OverflowedError, Topic
from gql.live.hub import Channel
from gql.schema.context import Info
from gql.schema.loaders import Loaders
from persistence.feed import BATCH, Event, read_after


def channel_of(info: Info) -> Channel:
    channel = info.context.channel
    if channel is None:
        raise NotAllowedError("Subscriptions run over WebSocket (graphql-transport-ws).")
    return channel


def cursor(value: str | None) -> int | None:
    """A cursor argument: a position (as ``AuditEntry.position`` and the events'
    ``cursor`` give it), or 0 for the beginning of the trail."""
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or not 0 <= int(value) < 2**63:
        raise BadUserInputError("'after' is a cursor: a position received before, as a string.")
    return int(value)


async def events(
    info: Info,
    topic: Topic,
    after: int | None,
    *,
    where: Sequence[ColumnElement[bool]] = (),
    matches: Callable[[Event], bool] = lambda _event: True,
) -> AsyncIterator[Event]:
    """The events of ``topic`` after position ``after`` (None: from now on) that
    ``matches`` accepts (``where``: the same condition in SQL, for the replay). Before
    each one, the context sees the viewer as they are now, with empty loaders."""
    channel = channel_of(info)
    live = channel.hub
    subscription = live.bus.open(topic, live.settings.ws_buffer_events, channel.overflowed)
    try:
        last = subscription.start if after is None else after
        while last < subscription.start:
            engine = live.database.read_engine or live.database.engine
            async with engine.connect() as connection:
                batch = await read_after(connection, last, where, through=subscription.start)
            for event in batch:
                last = event.position
                if matches(event):
                    _refresh(info, channel)
                    yield event
            if len(batch) < BATCH:
                break
        while True:
            try:
                event = await subscription.next()
            except OverflowedError:
                return  # its connection is closing
            if event.position > last and matches(event):
                last = event.position
                _refresh(info, channel)
                yield event
    finally:
        live.bus.close(subscription)


def _refresh(info: Info, channel: Channel) -> None:
    """What an event is read with: the viewer as the last token check found them, and
    loaders that remember nothing from earlier events."""
    context = info.context
    context.viewer = channel.viewer
    context.loaders = Loaders(context.database, channel.viewer)
