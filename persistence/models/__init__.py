"""The models. Every module in this package is imported here, so the metadata that
Alembic compares against is complete without a list to keep up to date."""

import importlib
import pkgutil

from persistence.models.api_token import ApiToken
from persistence.models.audit_log import AuditLog
from persistence.models.comment import Comment
from persistence.models.feature_flag import FeatureFlag, FlagOverride
from persistence.models.post import Post, PostStatus
from persistence.models.post_tag import PostTag
from persistence.models.tag import Tag
from persistence.models.user import User

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ApiToken",
    "AuditLog",
    "Comment",
    "FeatureFlag",
    "FlagOverride",
    "Post",
    "PostStatus",
    "PostTag",
    "Tag",
    "User",
]
