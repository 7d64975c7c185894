"""The per-request context every resolver receives as ``info.context``."""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry
from starlette.responses import Response

from gql.errors import UnauthenticatedError
from gql.http.rate_limit import RateLimiter
from gql.live.hub import Channel, Live
from gql.schema.loaders import Loaders
from gql.settings import Settings
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import User
from persistence.personal import loaded_key
from persistence.replicas import RequestReads, encode_token
from persistence.unit_of_work import UnitOfWork


@dataclass
class Context:
    settings: Settings
    database: Database
    viewer: User | None
    loaders: Loaders
    rate_limiter: RateLimiter
    request_id: str
    client_address: str
    user_agent: str | None
    # Where the error policy sets the HTTP status and Retry-After (None outside HTTP).
    response: Response | None = None
    # Where this request's reads go, with replicas (persistence.replicas).
    reads: RequestReads | None = None
    units: list[UnitOfWork] = field(default_factory=list)
    live: Live | None = None
    """This process's live updates (None: off)."""
    channel: Channel | None = None
    """Over a WebSocket, once signed in: the connection's standing (:mod:`gql.live.hub`)."""

    def require_viewer(self) -> User:
        """The signed-in user; anonymous requests fail before touching the database."""
        if self.viewer is None:
            raise UnauthenticatedError()
        return self.viewer

    def unit_of_work(self, actor: User | None = None) -> UnitOfWork:
        """A unit of work stamped with this request, whose actor is the viewer (or
        ``actor``: a user signing in acts before they are the viewer)."""
        actor = actor or self.require_viewer()
        if self.reads is not None:
            self.reads.pin_to_primary()  # what it writes, the rest of the request reads
        unit = UnitOfWork(
            self.database,
            AuditContext(
                actor_id=actor.id,
                request_id=self.request_id,
                ip_address=self.client_address,
                user_agent=self.user_agent,
                actor_key=loaded_key(actor),
            ),
        )
        self.units.append(unit)
        return unit

    def consistency_token(self) -> str | None:
        """The token of this request's last commit, with replicas (None: it wrote
        nothing, or there are no replicas)."""
        positions = [u.commit_position for u in self.units if u.commit_position is not None]
        return encode_token(max(positions)) if positions else None


Info = strawberry.Info[Context, None]
