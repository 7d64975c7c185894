from __future__ import annotations

import itertools
from typing import Any

from persistence.models import Comment, Post
from persistence.repositories.comment import CommentRepository
from persistence.repositories.post import PostRepository
from persistence.unit_of_work import UnitOfWork

_numbers = itertools.count(1)


async def create_post(uow: UnitOfWork, **overrides: Any) -> Post:
    n = next(_numbers)
    values: dict[str, Any] = {"title": f"Post {n}", "slug": f"post-{n}", "body": "Hello."}
    return await PostRepository(uow.session).add(Post(**(values | overrides)))


async def create_comment(uow: UnitOfWork, post: Post, **overrides: Any) -> Comment:
    values: dict[str, Any] = {"post_id": post.id, "body": "Nice post."}
    return await CommentRepository(uow.session).add(Comment(**(values | overrides)))
