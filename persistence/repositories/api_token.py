from __future__ import annotations

from persistence.models.api_token import ApiToken
from persistence.pagination import desc
from persistence.repository import BaseRepository


class ApiTokenRepository(BaseRepository[ApiToken]):
    model = ApiToken
    default_order = (desc(ApiToken.created_at),)

    async def find_by_hash(self, token_hash: str) -> ApiToken | None:
        return await self.get_one_by(token_hash=token_hash)
