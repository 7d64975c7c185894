"""All models, imported here so that the metadata is complete wherever it is used."""

from persistence.models.api_token import ApiToken
from persistence.models.audit_log import AuditLog
from persistence.models.comment import Comment
from persistence.models.feature_flag import FeatureFlag, FlagOverride
from persistence.models.post import Post, PostStatus
from persistence.models.post_tag import PostTag
from persistence.models.tag import Tag
from persistence.models.user import User

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
