"""The container image: its inputs stay in step with the project, and it really runs.

The first tests read files only. The last builds the image and runs it against
PostgreSQL (``bash container/check``: buildah, podman, root, a few minutes cold); it
runs only when ``AUDITQL_CONTAINER_CHECK=1``, so that the default ``uv run pytest``
stays fast.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gql.http import playground

ROOT = Path(__file__).resolve().parents[2]


def _locked(path: Path) -> dict[str, str]:
    """name -> version of every requirement in a hash-pinned requirements file."""
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", path.read_text(), re.M)
    return {canonicalize_name(name): version for name, version in pins}


def test_requirements_lock_pins_what_pyproject_pins() -> None:
    # The image installs requirements.lock alone; a pin bumped in pyproject.toml but
    # not re-locked (bash container/lock) would ship the old version.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = _locked(ROOT / "requirements.lock")
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock"
        assert requirement.specifier.contains(locked[name]), (
            f"requirements.lock has {name}=={locked[name]}, pyproject.toml {line!r}: "
            "run 'bash container/lock'"
        )


def test_locks_name_no_address_and_hash_every_requirement() -> None:
    for path in (ROOT / "requirements.lock", ROOT / "container/build-requirements.txt"):
        text = path.read_text()
        assert "://" not in text
        assert "index-url" not in text
        assert "find-links" not in text
        # One block per requirement: its line, then its hashes and comments.
        requirements = re.findall(r"^[A-Za-z0-9].*?(?=^[A-Za-z0-9]|\Z)", text, re.M | re.S)
        assert requirements
        for requirement in requirements:
            assert "--hash=sha256:" in requirement, requirement


def test_image_ships_exactly_the_served_playground_files() -> None:
    # The Dockerfile copies the served files out of its npm stage by name.
    dockerfile = (ROOT / "Dockerfile").read_text()
    copy = re.search(r"cp --parents(.*?)/served/", dockerfile, re.S)
    assert copy is not None
    copied = set(re.findall(r"node_modules/(\S+)", copy.group(1)))
    served = {f"{package}/{path}" for package, path in playground._ASSETS}
    manifests = {f"{package}/package.json" for package, _ in playground._ASSETS}
    assert copied == served | manifests


def test_build_tools_uv_is_the_one_ci_uses() -> None:
    ci = (ROOT / ".ci/run").read_text()
    ci_uv = re.search(r"^UV_VERSION=(\S+)", ci, re.M)
    assert ci_uv is not None
    assert _locked(ROOT / "container/build-requirements.txt")["uv"] == ci_uv.group(1)


@pytest.mark.skipif(
    os.environ.get("AUDITQL_CONTAINER_CHECK") != "1",
    reason="builds and runs the image (root, buildah, podman): AUDITQL_CONTAINER_CHECK=1",
)
def test_image_builds_migrates_serves_and_stops_cleanly() -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "container/check")],
        cwd=ROOT, capture_output=True, text=True, timeout=30 * 60, check=False,
    )  # fmt: skip
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "container check: passed" in done.stdout
