from __future__ import annotations

from sqlalchemy import ColumnElement, exists

from persistence.models.comment import Comment
from persistence.models.post import Post
from persistence.models.user import User
from persistence.pagination import asc
from persistence.repositories.post import PostRepository
from persistence.repository import BaseRepository


class CommentRepository(BaseRepository[Comment]):
    model = Comment
    default_order = (asc(Comment.created_at),)

    @staticmethod
    def visible_to(viewer: User | None) -> ColumnElement[bool]:
        """Comments on live posts the viewer may see."""
        return exists().where(
            Post.id == Comment.post_id, Post.deleted_at.is_(None), PostRepository.visible_to(viewer)
        )
