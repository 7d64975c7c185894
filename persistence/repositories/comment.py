from __future__ import annotations

from persistence.models.comment import Comment
from persistence.pagination import asc
from persistence.repository import BaseRepository


class CommentRepository(BaseRepository[Comment]):
    model = Comment
    default_order = (asc(Comment.created_at),)
