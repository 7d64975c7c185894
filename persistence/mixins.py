"""Column mixins and the convenience bases every model is built from.

A model picks one base (``TimestampedBase``, ``UUIDv7TimestampedBase``,
``AuditedEntityBase`` or ``AppendOnlyLogBase``) and may add ``SoftDeleteMixin``. The
unit of work recognises the mixins to stamp users, bump versions and record audit
entries, so a model never does that bookkeeping itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from sqlalchemy import ForeignKey, Identity, Index, text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from persistence.base import Base, utcnow
from persistence.ids import uuid7

if TYPE_CHECKING:
    from persistence.models.user import User


ACTOR_COLUMNS = frozenset({"created_by_id", "updated_by_id", "deleted_by_id"})
"""The columns the unit of work fills in from the acting user, never from input."""


class IntegerPKMixin:
    """A database-generated integer key; used by ``users`` only (see DESIGN.md)."""

    id: Mapped[int] = mapped_column(Identity(), primary_key=True, sort_order=-100)


class UUIDv7PKMixin:
    """A UUIDv7 key made in Python, so ids sort by creation time on every backend."""

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid7, sort_order=-100)


class CreatedAtMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow, sort_order=100)


class TimestampMixin(CreatedAtMixin):
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, sort_order=101)


def user_fk(*, index: bool = True, sort_order: int = 110) -> Mapped[int | None]:
    """A nullable reference to the acting user that survives the user's deletion."""
    return mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=index, sort_order=sort_order
    )


def user_at(cls: Any, column: str) -> Mapped[User | None]:
    """The user a ``user_fk`` column names, for explicit loading (``selectinload``).
    Relationships here are for reading: writes set the column, and ``lazy="raise"``
    makes touching an unloaded one an error instead of a hidden query."""
    return relationship(
        "User", foreign_keys=f"{cls.__name__}.{column}", remote_side="User.id",
        lazy="raise", viewonly=True,
    )  # fmt: skip


class UserAuditMixin:
    """Who created and who last changed a row; stamped by the unit of work, never by input.

    A model whose own composite index leads with ``created_by_id`` (posts by author and
    time) sets ``__created_by_indexed__ = False`` to skip the redundant single index.
    """

    __created_by_indexed__: ClassVar[bool] = True

    @declared_attr
    def created_by_id(cls) -> Mapped[int | None]:
        return user_fk(index=cls.__created_by_indexed__, sort_order=110)

    @declared_attr
    def updated_by_id(cls) -> Mapped[int | None]:
        return user_fk(sort_order=111)

    @declared_attr
    def created_by(cls) -> Mapped[User | None]:
        return user_at(cls, "created_by_id")

    @declared_attr
    def updated_by(cls) -> Mapped[User | None]:
        return user_at(cls, "updated_by_id")


class VersionMixin:
    """An optimistic-locking counter that every UPDATE increments.

    SQLAlchemy's version counter adds ``AND version = :loaded`` to every UPDATE and
    DELETE, so a write based on a stale read fails instead of overwriting.
    Ref: https://docs.sqlalchemy.org/en/20/orm/versioning.html
    """

    version: Mapped[int] = mapped_column(default=1, sort_order=120)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class SoftDeleteMixin:
    """Rows are marked deleted instead of removed; every read path hides them by default."""

    deleted_at: Mapped[datetime | None] = mapped_column(sort_order=130)

    @declared_attr
    def deleted_by_id(cls) -> Mapped[int | None]:
        return user_fk(sort_order=131)

    @declared_attr
    def deleted_by(cls) -> Mapped[User | None]:
        return user_at(cls, "deleted_by_id")

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @staticmethod
    def unique_while_live(table: str, *columns: str) -> Index:
        """A unique index over ``columns`` among live rows only, so deleting a row frees
        its values: ``uq_<table>_<columns>_live``, partial on both databases."""
        live = text("deleted_at IS NULL")
        name = f"uq_{table}_{'_'.join(columns)}_live"
        return Index(name, *columns, unique=True, postgresql_where=live, sqlite_where=live)


class AuditOptions:
    """Per-model switches read by the unit of work when it writes audit entries.

    ``__audit_redacted__`` names columns whose values are secret: a change to them is
    recorded, their values never are. ``__audit_ignored__`` names columns whose changes
    are bookkeeping (a token's ``last_used_at``) and make no entry on their own.
    ``__audit_personal__`` names columns whose values are someone's personal data: they
    are recorded sealed under the key of the user that ``__audit_subject__`` (a column
    holding a user id) names, and read ``[erased]`` once that user is erased
    (:mod:`persistence.personal`).
    """

    __audit_redacted__: ClassVar[frozenset[str]] = frozenset()
    __audit_ignored__: ClassVar[frozenset[str]] = frozenset()
    __audit_personal__: ClassVar[frozenset[str]] = frozenset()
    __audit_subject__: ClassVar[str | None] = None


class TimestampedBase(Base, AuditOptions, IntegerPKMixin, TimestampMixin):
    __abstract__ = True


class UUIDv7TimestampedBase(Base, AuditOptions, UUIDv7PKMixin, TimestampMixin):
    __abstract__ = True


class AuditedEntityBase(
    Base, AuditOptions, UUIDv7PKMixin, TimestampMixin, UserAuditMixin, VersionMixin
):
    """UUIDv7 id, timestamps, created/updated by, and a version: the usual entity."""

    __abstract__ = True


class AppendOnly:
    """Rows are written once and never changed: the application role may only read and
    insert them (:mod:`persistence.roles`), and the database refuses UPDATE, DELETE and
    TRUNCATE, to their owner too (the migrations' triggers)."""


class AppendOnlyLogBase(Base, AppendOnly, UUIDv7PKMixin, CreatedAtMixin):
    """UUIDv7 id and ``created_at`` only: rows are written once and never changed."""

    __abstract__ = True
