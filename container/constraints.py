"""Keep development and CI on the image's versions: pyproject.toml's
``[tool.uv] constraint-dependencies`` lists every pin of requirements.lock, transitive
dependencies included, so ``uv sync`` resolves to what the image installs.

``python container/constraints.py`` rewrites that list from requirements.lock (``bash
container/lock`` runs it after compiling); ``--check`` exits 1, printing the
difference, when the list and the lock have drifted apart.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"

# The list in pyproject.toml, from its key to its closing bracket.
_LIST = re.compile(r"^constraint-dependencies = \[\n(.*?)^\]\n", re.M | re.S)


def lock_pins(lock: str) -> list[str]:
    """The requirements of a hash-pinned lock, markers kept: ``name==version ; marker``."""
    return [
        re.sub(r"\s*\\$", "", line).strip()
        for line in lock.splitlines()
        if re.match(r"[A-Za-z0-9]", line)
    ]


def listed(pyproject: str) -> list[str]:
    match = _LIST.search(pyproject)
    if match is None:
        raise SystemExit("pyproject.toml has no [tool.uv] constraint-dependencies list")
    return re.findall(r'^\s*"([^"]+)",$', match.group(1), re.M)


def rewrite(pyproject: str, pins: list[str]) -> str:
    body = "".join(f'    "{pin}",\n' for pin in pins)
    return _LIST.sub(lambda _: f"constraint-dependencies = [\n{body}]\n", pyproject, count=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report drift")
    check = parser.parse_args(argv).check
    pins, pyproject = lock_pins(LOCK.read_text()), PYPROJECT.read_text()
    if not check:
        PYPROJECT.write_text(rewrite(pyproject, pins))
        return 0
    current = listed(pyproject)
    for pin in sorted(set(current) ^ set(pins)):
        print(("- " if pin in current else "+ ") + pin)
    if current != pins:
        print(
            "pyproject.toml's constraint-dependencies differ from requirements.lock: run "
            "'bash container/lock' and commit both.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
