"""Signing in and API tokens."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain import tokens
from gql.errors import RateLimitedError
from gql.schema.context import Info
from gql.schema.ids import uuid_key
from gql.schema.mutations import perform
from gql.schema.resolvers.listing import list_connection
from gql.schema.types.api_token import ApiTokenType
from gql.schema.types.connection import Connection
from gql.schema.types.error import (
    InvalidCredentialsErrorType,
    NotFoundErrorType,
    ValidationErrorType,
)
from gql.schema.types.user import UserType
from persistence.models import ApiToken, User
from persistence.repositories.api_token import ApiTokenRepository
from persistence.unit_of_work import UnitOfWork


@strawberry.type
class Query:
    @strawberry.field(description="Your API tokens, newest first (revoked ones included).")
    async def api_tokens(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[ApiTokenType] | None:
        viewer = info.context.require_viewer()
        return await list_connection(
            info, ApiTokenRepository, [ApiToken.user_id == viewer.id],
            first=first, after=after, last=None, before=None,
        )  # fmt: skip


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.input
class CreateApiTokenInput:
    name: str = strawberry.field(description="What the token is for; 1-100 characters.")
    expires_in_days: int | None = strawberry.field(
        default=None, description=f"1-{tokens.MAX_TOKEN_DAYS}; none means it never expires."
    )


@strawberry.input
class RevokeApiTokenInput:
    id: strawberry.ID


@strawberry.type(description="The token is shown here once; keep it secret.")
class TokenSuccess:
    token: str = strawberry.field(description="Send it as `Authorization: Bearer <token>`.")
    api_token: ApiTokenType
    user: UserType


@strawberry.type
class RevokeApiTokenSuccess:
    api_token: ApiTokenType


LoginResult = Annotated[TokenSuccess | InvalidCredentialsErrorType, strawberry.union("LoginResult")]
CreateApiTokenResult = Annotated[
    TokenSuccess | ValidationErrorType, strawberry.union("CreateApiTokenResult")
]
RevokeApiTokenResult = Annotated[
    RevokeApiTokenSuccess | NotFoundErrorType, strawberry.union("RevokeApiTokenResult")
]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Exchange an email and password for a token. Every "
                         "failure looks the same, whatever the reason.")  # fmt: skip
    async def login(self, info: Info, input: LoginInput) -> LoginResult | None:
        context = info.context
        limiter, address = context.rate_limiter, context.client_address
        retry_after = await limiter.sign_in_refused(address, input.email)
        if retry_after is not None:
            raise RateLimitedError(retry_after)
        user = await tokens.check_credentials(context.database, input.email, input.password)
        if user is None:
            await limiter.sign_in_failed(address, input.email)
            return InvalidCredentialsErrorType(message="Wrong email or password.")
        async with context.unit_of_work(actor=user) as uow:
            secret, stored = await tokens.issue_token(
                uow, user, "login", context.settings.token_ttl_days
            )
        return TokenSuccess(token=secret, api_token=stored, user=user)

    @strawberry.mutation(description="Make a new API token for yourself.")
    async def create_api_token(
        self, info: Info, input: CreateApiTokenInput
    ) -> CreateApiTokenResult | None:
        async def work(uow: UnitOfWork, viewer: User) -> TokenSuccess:
            secret, stored = await tokens.issue_token(
                uow, viewer, input.name, input.expires_in_days
            )
            return TokenSuccess(token=secret, api_token=stored, user=viewer)

        return await perform(info, work)

    @strawberry.mutation(description="Revoke one of your tokens; it stops working at once.")
    async def revoke_api_token(
        self, info: Info, input: RevokeApiTokenInput
    ) -> RevokeApiTokenResult | None:
        async def work(uow: UnitOfWork, viewer: User) -> RevokeApiTokenSuccess:
            token = await tokens.revoke_token(uow, viewer, uuid_key(input.id, "ApiToken"))
            return RevokeApiTokenSuccess(api_token=token)

        return await perform(info, work)
