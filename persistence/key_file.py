"""Keys that development makes for itself, kept in one small file between runs.

    kek = load_or_create(path, "audit-kek:dev", lambda: os.urandom(32))

The file is a JSON object of base64 values by name, readable by its owner only (0600
from the moment it exists). Several processes may start at once (``serve --workers``):
each takes an exclusive lock on the file, and a value once written is never replaced,
so every process reads the same keys. The file is rewritten whole (a new file renamed
over the old), never edited in place, so a crash leaves the old keys or the new ones.
Production takes its keys from settings instead, and refuses to start without them.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path


def load_or_create(path: Path, name: str, make: Callable[[], bytes]) -> bytes:
    """The value called ``name`` in the file at ``path``; if it has none, ``make()``,
    stored there first (the file and its directory are created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "r+b") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            if not _same_file(file.fileno(), path):
                continue  # another process renamed a new file over this one: read that
            entries = _entries(file.read(), path)
            if name not in entries:
                entries[name] = base64.b64encode(make()).decode()
                _replace(path, entries)
            return base64.b64decode(entries[name])


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        return os.fstat(descriptor).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def _entries(content: bytes, path: Path) -> dict[str, str]:
    if not content:
        return {}
    try:
        entries = json.loads(content)
    except ValueError:
        entries = None
    if not isinstance(entries, dict):
        raise ValueError(f"{path} is not a key file (a JSON object of base64 keys)")
    return entries


def _replace(path: Path, entries: dict[str, str]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(entries, file, indent=2, sort_keys=True)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
