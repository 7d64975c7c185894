"""Rules shared by every aggregate: bounded text and who may change what."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, true

from persistence.errors import ForbiddenError, ValidationError
from persistence.models import User


def bounded_text(value: str, field: str, *, max_length: int, min_length: int = 1) -> str:
    """``value`` trimmed, if its length is within bounds; else a ValidationError naming
    ``field``."""
    value = value.strip()
    if not min_length <= len(value) <= max_length:
        raise ValidationError(field, f"{field} must be {min_length} to {max_length} characters.")
    return value


def require_superuser(actor: User | None) -> None:
    """Superusers may; so may the system (``None``: the command line, the seed)."""
    if actor is not None and not actor.is_superuser:
        raise ForbiddenError("Only superusers can do this.")


def require_owner(actor: User, obj: Any) -> None:
    """Authors change their own objects; superusers change everything."""
    if not (actor.is_superuser or obj.created_by_id == actor.id):
        raise ForbiddenError("Only its author and superusers can change this.")


def superusers_only(viewer: User | None) -> ColumnElement[bool]:
    """Every row for superusers, none for anyone else."""
    return true() if viewer is not None and viewer.is_superuser else false()
