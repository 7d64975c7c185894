"""Bookmarks: made, changed, deleted and restored by their owner alone."""

from __future__ import annotations

import strawberry

from domain import bookmarks
from gql.schema.commands import command_field
from gql.schema.types.bookmark import BookmarkType
from gql.schema.types.error import (
    AlreadyExistsErrorType,
    ConflictErrorType,
    NotFoundErrorType,
    ValidationErrorType,
)


@strawberry.type
class Mutation:
    create_bookmark = command_field(
        bookmarks.create_bookmark, BookmarkType,
        ValidationErrorType, NotFoundErrorType, AlreadyExistsErrorType,
        description="Bookmark a post you can see (once, while the bookmark lasts).",
    )  # fmt: skip
    update_bookmark = command_field(
        bookmarks.update_bookmark, BookmarkType,
        ValidationErrorType, NotFoundErrorType, ConflictErrorType,
        description="Change your bookmark's note.",
    )  # fmt: skip
