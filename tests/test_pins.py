"""The versions this environment runs are the ones the image runs, and the engine
refuses graphql-core or strawberry releases it was not written for."""

from __future__ import annotations

import re
from importlib import metadata

import pytest
import strawberry
from packaging.requirements import Requirement

from container import constraints
from gql.engine import compat
from gql.engine.execution import lean_execution


def _applicable_lock_pins() -> dict[str, str]:
    """requirements.lock's ``name: version`` for this interpreter and platform."""
    pins = {}
    for line in constraints.lock_pins(constraints.LOCK.read_text()):
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            (specifier,) = requirement.specifier
            pins[requirement.name] = specifier.version
    return pins


def test_every_runtime_dependency_is_installed_at_the_images_version() -> None:
    pins = _applicable_lock_pins()
    assert {"graphql-core", "strawberry-graphql", "anyio"} <= pins.keys()
    installed = {name: metadata.version(name) for name in pins}
    assert installed == pins


def test_uv_is_constrained_to_every_pin_of_the_lock() -> None:
    listed = constraints.listed(constraints.PYPROJECT.read_text())
    assert listed == constraints.lock_pins(constraints.LOCK.read_text())


def test_the_constraint_list_is_rewritten_from_the_lock() -> None:
    pyproject = 'a = 1\nconstraint-dependencies = [\n    "old==1",\n]\nb = 2\n'
    rewritten = constraints.rewrite(pyproject, ["new==2", "other==3 ; sys_platform == 'win32'"])
    assert constraints.listed(rewritten) == ["new==2", "other==3 ; sys_platform == 'win32'"]
    assert rewritten.startswith("a = 1\n")
    assert rewritten.endswith("]\nb = 2\n")


@pytest.mark.parametrize("distribution", compat.ENGINE_DEPENDENCIES)
def test_the_engine_dependencies_are_pinned_exactly(distribution: str) -> None:
    assert compat.pinned_version(distribution) == metadata.version(distribution)
    compat.check_versions()


@pytest.mark.parametrize("distribution", compat.ENGINE_DEPENDENCIES)
def test_the_engine_refuses_a_release_it_was_not_written_for(
    distribution: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = metadata.version

    def version(name: str) -> str:
        return "99.0.0" if name == distribution else real(name)

    monkeypatch.setattr(metadata, "version", version)

    @strawberry.type
    class Query:
        answer: int = 42

    with pytest.raises(compat.IncompatibleDependencyError) as raised:
        lean_execution(strawberry.Schema(query=Query))
    pin = f"{distribution}=={compat.pinned_version(distribution)}"
    assert re.search(
        rf"written for {re.escape(pin)} .* {distribution} 99\.0\.0 is installed", str(raised.value)
    )
