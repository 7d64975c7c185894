"""The README's walk through "Adding an audited entity" shows the Bookmark code as it
is: every Python block there is the body of the file its step names, verbatim."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_adding_an_audited_entity_shows_the_bookmark_code_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Adding an audited entity", 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"^\d\. \*\*[^*]+\*\*, `([^`]+\.py)`.*?```python\n(.*?)```", section,
                       re.M | re.S)  # fmt: skip
    assert [path for path, _ in steps] == [
        "persistence/models/bookmark.py",
        "domain/bookmarks.py",
        "gql/schema/types/bookmark.py",
        "gql/schema/resolvers/bookmark.py",
    ]
    for path, block in steps:
        code = textwrap.dedent(block)
        source = (ROOT / path).read_text()
        assert source.endswith(code), f"README's {path} differs from the file"
        left_out = ast.parse(source[: -len(code)]).body
        assert all(
            isinstance(node, ast.Import | ast.ImportFrom | ast.If | ast.Expr) for node in left_out
        ), f"README's {path} leaves out more than its docstring and imports"
