"""The fenced code blocks of a README, and the commands in its ``sh`` and ``sql`` blocks
as a shell or ``psql`` reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^( *)```(\w*)\s*$")
_HEADING = re.compile(r"^#{1,6} +(.+?)\s*$")


@dataclass(frozen=True)
class Block:
    readme: str
    """The README's path from the repository root."""
    section: str
    """The nearest heading above the block, without its ``#``."""
    language: str
    line: int
    """The line of the opening fence."""
    text: str
    """The block's lines, without the indentation of its fence (a block in a list item)."""

    @property
    def commands(self) -> list[str]:
        if self.language == "sh":
            return shell_commands(self.text)
        if self.language == "sql":
            return sql_statements(self.text)
        return []


def read_blocks(root: Path, readme: str) -> list[Block]:
    """Every fenced block of ``root/readme``, in order."""
    blocks: list[Block] = []
    lines: list[str] = []
    section = ""
    opened: tuple[str, str, int] | None = None  # indentation, language, line
    for number, line in enumerate((root / readme).read_text().splitlines(), 1):
        if opened is None:
            if fence := _FENCE.match(line):
                opened, lines = (fence[1], fence[2], number), []
            elif heading := _HEADING.match(line):
                section = heading[1]
        elif line.strip() == "```":
            _, language, start = opened
            blocks.append(Block(readme, section, language, start, "\n".join(lines) + "\n"))
            opened = None
        else:
            lines.append(line.removeprefix(opened[0]))
    return blocks


def shell_commands(text: str) -> list[str]:
    """The commands of a shell block: ``# comments`` stripped, a line ending in a
    backslash joined to the next (one space between), blank lines dropped."""
    commands, pending = [], ""
    for line in text.splitlines():
        code = _without_comment(line)
        if code.endswith("\\"):
            pending += code[:-1].strip() + " "
            continue
        command, pending = (pending + code.strip()).strip(), ""
        if command:
            commands.append(command)
    assert not pending, f"a backslash continues the block's last line: {pending!r}"
    return commands


def _without_comment(line: str) -> str:
    """``line`` up to an unquoted ``#`` that starts a word, as the shell reads it."""
    quote, index = "", 0
    while index < len(line):
        char = line[index]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"':
                index += 1
        elif char in "'\"":
            quote = char
        elif char == "\\":
            index += 1
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
        index += 1
    return line.rstrip()


def sql_statements(text: str) -> list[str]:
    """The statements of a SQL block, ``-- comments`` stripped, each on one line with
    its ``;``. (No statement in the READMEs has a ``;`` or ``--`` inside a string.)"""
    code = " ".join(line.split("--", 1)[0] for line in text.splitlines())
    return [" ".join(part.split()) + ";" for part in code.split(";") if part.strip()]
