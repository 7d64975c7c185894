"""Installing the playground's pinned npm packages in the background, as ``auditql
serve`` does in development when they are missing.

In the background, not before the server binds: the API answers at once instead of
after the seconds npm takes (minutes offline, before it gives up), and the page says
"installing" meanwhile. The install holds a lock on the directory, which the page
reads: the lock ends with the processes holding it, so it never goes stale, and two
servers never run npm over the same ``node_modules`` at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)

NODE_PACKAGES = "apt-get install nodejs npm"
"""What gives a Debian or Ubuntu machine Node.js and npm."""
_NODE_TOOLS = ("node", "npm")
# npm waits up to 5 minutes for each request to the registry; an install gives up sooner.
_TIMEOUT_S = 180


def command(directory: Path) -> list[str]:
    """The install: exactly the versions and hashes of the directory's lock file."""
    return ["npm", "--prefix", str(directory), "ci"]


def node_found() -> bool:
    return all(shutil.which(tool) for tool in _NODE_TOOLS)


def installing(directory: Path) -> bool:
    """Whether a server (this process or another) is installing into ``directory``."""
    lock = _lock(directory, fcntl.LOCK_SH)
    if lock is None:
        return True
    os.close(lock)
    return False


def start(directory: Path) -> threading.Thread | None:
    """Installs into ``directory`` in the background; the install under way, or None
    when Node.js and npm are missing or another process is installing. One log line
    says which, another how it ended."""
    if not node_found():
        logger.warning(
            "the playground's assets are missing and so are Node.js and npm (%s); "
            "GET /graphql says what to do, and the API serves meanwhile",
            NODE_PACKAGES,
        )
        return None
    lock = _lock(directory, fcntl.LOCK_EX)
    if lock is None:
        logger.info("another process is installing the playground's assets")
        return None
    logger.info(
        "installing the playground's pinned assets in the background (%s); "
        "GET /graphql says so until they are in place",
        shlex.join(command(directory)),
    )
    thread = threading.Thread(
        target=_install, args=(directory, lock), name="playground-install", daemon=True
    )
    thread.start()
    return thread


def _install(directory: Path, lock: int) -> None:
    started = time.monotonic()
    try:
        # npm holds the lock too: should the server stop first, npm goes on installing
        # and the next server's page still says so.
        result = subprocess.run(
            command(directory), capture_output=True, text=True, check=False,
            timeout=_TIMEOUT_S, pass_fds=(lock,),
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        failure = str(exc)
    else:
        if result.returncode == 0:
            logger.info("installed the playground's assets in %.0f s", time.monotonic() - started)
            return
        first_line = next((line for line in result.stderr.splitlines() if line.strip()), "")
        failure = f"exit status {result.returncode}: {first_line}"
    finally:
        os.close(lock)
    logger.warning(
        "could not install the playground's assets (%s); the API serves on, and `%s` shows why",
        failure,
        shlex.join(command(directory)),
    )


def _lock(directory: Path, operation: int) -> int | None:
    """An open descriptor of ``directory`` holding ``operation``'s flock, or None when
    another descriptor holds a conflicting one."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor
