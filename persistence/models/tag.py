from __future__ import annotations

from sqlalchemy import CheckConstraint, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column, validates

from persistence.mixins import AuditedEntityBase

# Portable "is it #rrggbb": SQLite has no regular expressions, and ltrim() with a set
# of characters means the same on both backends.
_HEX_COLOR = (
    "length(color) = 7 AND substr(color, 1, 1) = '#'"
    " AND ltrim(substr(color, 2), '0123456789abcdef') = ''"
)


class Tag(AuditedEntityBase):
    __tablename__ = "tags"

    name: Mapped[str] = mapped_column(String(50))
    color: Mapped[str] = mapped_column(String(7), default="#6b7280")

    __table_args__ = (
        CheckConstraint("length(name) BETWEEN 1 AND 50", name="name_length"),
        CheckConstraint(_HEX_COLOR, name="color_hex"),
    )

    @validates("color")
    def _lower_color(self, _key: str, value: str) -> str:
        return value.lower()


Index("uq_tags_name_lower", func.lower(Tag.name), unique=True)
