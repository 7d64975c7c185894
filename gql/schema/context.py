"""The per-request context every resolver receives as ``info.context``."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from starlette.responses import Response

from gql.errors import UnauthenticatedError
from gql.http.rate_limit import RateLimiter
from gql.schema.loaders import Loaders
from gql.settings import Settings
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import User
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

    def require_viewer(self) -> User:
        """The signed-in user; anonymous requests fail before touching the database."""
        if self.viewer is None:
            raise UnauthenticatedError()
        return self.viewer

    def unit_of_work(self, actor: User | None = None) -> UnitOfWork:
        """A unit of work stamped with this request, whose actor is the viewer (or
        ``actor``: a user signing in acts before they are the viewer)."""
        actor = actor or self.require_viewer()
        return UnitOfWork(
            self.database,
            AuditContext(
                actor_id=actor.id,
                request_id=self.request_id,
                ip_address=self.client_address,
                user_agent=self.user_agent,
            ),
        )


Info = strawberry.Info[Context, None]
