"""The layout the code promises: persistence knows nothing of the layers above it,
domain nothing of GraphQL, and no module imports itself back through others. The only
exceptions are names used for type checking alone, among classes that name each other
and that their library resolves by name when it needs them: the GraphQL types
(``strawberry.lazy``) and the mapped classes (relationships, by class name)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("persistence", "domain", "gql")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    return {
        node
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for statement in block.body
        for node in ast.walk(statement)
    }


def imports_of(path: Path, known: set[str], *, type_checking: bool) -> set[str]:
    """The first-party modules ``path`` imports: at run time, and, with
    ``type_checking``, for type checking too."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    skipped = set() if type_checking else _type_checking_only(tree)
    for node in ast.walk(tree):
        if node in skipped:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(name for name in names if name in known)
    return found


def graph(*, type_checking: bool = True) -> dict[str, set[str]]:
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    known = {module_name(path) for path in paths}
    return {
        module_name(path): imports_of(path, known, type_checking=type_checking) for path in paths
    }


def test_the_arrows_point_one_way() -> None:
    imports = graph()
    upward = [(module, target) for module, targets in imports.items() for target in targets
              if (module.startswith("persistence") and not target.startswith("persistence"))
              or (module.startswith("domain") and target.startswith("gql"))]  # fmt: skip
    assert upward == []


def cycles(imports: dict[str, set[str]]) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()

    def visit(module: str, trail: list[str]) -> None:
        for target in imports.get(module, ()):
            if target in trail:
                cycle = trail[trail.index(target) :]
                start = cycle.index(min(cycle))
                found.add(tuple(cycle[start:] + cycle[:start]))
            elif len(trail) < 30:
                visit(target, [*trail, target])

    for module in imports:
        visit(module, [module])
    return found


def test_no_module_imports_itself_back() -> None:
    assert sorted(cycles(graph(type_checking=False))) == []


def test_only_types_and_models_name_each_other_for_type_checking() -> None:
    def among(prefixes: tuple[str, ...], cycle: tuple[str, ...]) -> bool:
        return all(module.startswith(prefixes) for module in cycle)

    types = ("gql.schema.types.",)
    mapped = ("persistence.models.", "persistence.mixins")
    named = cycles(graph(type_checking=True))
    assert sorted(c for c in named if not (among(types, c) or among(mapped, c))) == []
