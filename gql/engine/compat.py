"""The graphql-core and strawberry releases the execution engine was written for.

:mod:`gql.engine.execution` overrides graphql-core's ``ExecutionContext.execute_field``
and ``complete_value``, calls its ``collect_subfields``, and reads strawberry's
internals (``Schema._schema``, its execution context class, its resolver wrappers).
None of that is public API: a release may change it without notice, and the shortcuts
would then return wrong results rather than fail. So pyproject.toml pins both exactly,
and the engine refuses, by name, any version other than the pinned one.
"""

from __future__ import annotations

import re
from importlib import metadata

ENGINE_DEPENDENCIES = ("graphql-core", "strawberry-graphql")


class IncompatibleDependencyError(RuntimeError):
    """An installed release is not the one the engine was written for."""


def pinned_version(distribution: str) -> str:
    """The version auditql's own metadata (pyproject.toml) pins ``distribution`` to."""
    for requirement in metadata.requires("auditql") or ():
        match = re.fullmatch(rf"{re.escape(distribution)}(?:\[[^]]*\])?==([^\s;]+)", requirement)
        if match:
            return match.group(1)
    raise IncompatibleDependencyError(
        f"pyproject.toml must pin {distribution} exactly (==): gql.engine relies on its internals"
    )


def check_versions() -> None:
    """Raise :class:`IncompatibleDependencyError` unless every engine dependency is
    installed at its pinned version."""
    for distribution in ENGINE_DEPENDENCIES:
        wanted, installed = pinned_version(distribution), metadata.version(distribution)
        if installed != wanted:
            raise IncompatibleDependencyError(
                f"gql.engine was written for {distribution}=={wanted} (pinned in "
                f"pyproject.toml), but {distribution} {installed} is installed: install the "
                f"pinned version, or review gql/engine/execution.py against {installed} "
                "and move the pin"
            )
