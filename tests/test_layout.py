"""The layout the code promises: persistence knows nothing of the layers above it,
domain nothing of GraphQL, and no module imports itself back through others, but for
the GraphQL types, which name each other (for type checking only: strawberry resolves
them lazily)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("persistence", "domain", "gql")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The first-party modules ``path`` imports, for type checking included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(name for name in names if name in known)
    return found


def graph() -> dict[str, set[str]]:
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    known = {module_name(path) for path in paths}
    return {module_name(path): imports_of(path, known) for path in paths}


def test_the_arrows_point_one_way() -> None:
    imports = graph()
    upward = [(module, target) for module, targets in imports.items() for target in targets
              if (module.startswith("persistence") and not target.startswith("persistence"))
              or (module.startswith("domain") and target.startswith("gql"))]  # fmt: skip
    assert upward == []


def test_no_module_imports_itself_back() -> None:
    imports = graph()
    cycles: set[tuple[str, ...]] = set()

    def visit(module: str, trail: list[str]) -> None:
        for target in imports.get(module, ()):
            if target in trail:
                cycle = trail[trail.index(target) :]
                start = cycle.index(min(cycle))
                cycles.add(tuple(cycle[start:] + cycle[:start]))
            elif len(trail) < 30:
                visit(target, [*trail, target])

    for module in imports:
        visit(module, [module])
    types = "gql.schema.types."
    assert sorted(c for c in cycles if not all(m.startswith(types) for m in c)) == []
