"""A developer's terminal in a checkout: a README's commands run as typed (``bash -c``),
each block in a shell of its own, servers left running until the test stops them."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.postgres import PostgresCluster
from tests.support.readme import Block
from tests.support.server import free_port, wait_healthy


@dataclass(frozen=True)
class Run:
    """Run it; it exits ``status`` and, when ``prints`` is given, a line of its standard
    output matches that pattern. ``stdin`` answers its prompts. ``optional``: the
    README may drop it without the table going stale."""

    prints: str = ""
    status: int = 0
    stdin: str = ""
    optional: bool = False


@dataclass(frozen=True)
class Serve:
    """Start it; /health answers, then /graphql answers a query; it keeps serving until
    the test stops it with SIGTERM, and then exits 0."""


@dataclass(frozen=True)
class Export:
    """``export NAME=VALUE``: NAME is set for the block's following commands."""


@dataclass(frozen=True)
class NotRun:
    reason: str


@dataclass(frozen=True)
class LeftToCI:
    """Not run here: ``.ci/run`` runs it (checked), for ``reason``."""

    reason: str


Outcome = Run | Serve | Export | NotRun | LeftToCI

# A query any server answers, whatever its data and whoever asks.
PROBE = "{ posts(first: 1) { totalCount } }"
# What the suite's own environment adds to a shell, and what a developer's settings add:
# a fresh shell has neither.
_NOT_IN_A_FRESH_SHELL = (
    "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PROJECT", "UV_RUN_RECURSION_DEPTH",
    "PYTHONPATH", "PYTHONHOME",
)  # fmt: skip


def fresh_shell_environment() -> dict[str, str]:
    """This process's environment without what ``uv run pytest`` and the suite add to
    it (the suite's virtual environment, its ``bin`` on PATH) and without ``AUDITQL_*``
    settings: what a developer's new shell has."""
    suite_bin = str(Path(sys.executable).parent)
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _NOT_IN_A_FRESH_SHELL and not name.startswith(("AUDITQL_", "PYTEST_"))
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p != suite_bin
    )
    return env


@dataclass
class Served:
    command: str
    base: str
    process: subprocess.Popen[bytes]
    log: Path


class Terminal:
    """Runs blocks in ``checkout`` as their table entries (``outcome``) say. With a
    ``cluster``, SQL goes to its ``psql`` as the superuser, and commands naming
    ``localhost:5432`` reach the cluster's port instead (the one change to their text)."""

    def __init__(
        self,
        checkout: Path,
        logs: Path,
        outcome: Callable[[Block, str], Outcome],
        *,
        cluster: PostgresCluster | None = None,
    ) -> None:
        self.checkout, self.logs, self.outcome, self.cluster = checkout, logs, outcome, cluster
        self.env = fresh_shell_environment()
        assert shutil.which("uv", path=self.env["PATH"]), "the README's commands need uv on PATH"
        self.servers: list[Served] = []
        self.ran: dict[str, list[subprocess.CompletedProcess[str]]] = {}

    def __enter__(self) -> Terminal:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for served in self.servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(served.process.pid, signal.SIGKILL)
            served.process.wait()

    def run(self, block: Block) -> None:
        """Every command of ``block`` the table says to run; a server is left running."""
        if block.language == "sql":
            self._psql(
                block, [c for c in block.commands if isinstance(self.outcome(block, c), Run)]
            )
            return
        env = dict(self.env)
        for command in block.commands:
            outcome = self.outcome(block, command)
            if isinstance(outcome, NotRun | LeftToCI):
                continue
            text = self._reach_cluster(command)
            if isinstance(outcome, Export):
                name, value = shlex.split(text.removeprefix("export "))[0].split("=", 1)
                env[name] = value
            elif isinstance(outcome, Run):
                self._run(command, text, outcome, env)
            elif isinstance(outcome, Serve):
                self._serve(text, env)

    def stop(self) -> None:
        """SIGTERM every server; each exits 0. Whatever a server left running in its
        process group (an npm install it started) is ended on leaving the terminal."""
        for served in self.servers:
            if served.process.poll() is None:
                served.process.send_signal(signal.SIGTERM)
            status = served.process.wait(timeout=60)
            assert status == 0, f"{served.command}: exit status {status}\n{served.log.read_text()}"

    def _reach_cluster(self, command: str) -> str:
        """The command, its PostgreSQL URLs on the cluster's port. A URL anywhere else
        fails: run as written it could reach a real database (the developer's own)."""
        urls = re.findall(r"postgresql\+asyncpg://\S*", command)
        assert self.cluster is not None or not urls, f"{command}: a URL, and no cluster"
        assert all("@localhost:5432/" in url for url in urls), f"{command}: not localhost:5432"
        if self.cluster is None:
            return command
        return command.replace("@localhost:5432/", f"@localhost:{self.cluster.port}/")

    def _run(self, command: str, text: str, outcome: Run, env: dict[str, str]) -> None:
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "-c", text], cwd=self.checkout, env=env, input=outcome.stdin,
            capture_output=True, text=True, timeout=300, check=False,
            start_new_session=True,  # no terminal: a prompt reads stdin
        )  # fmt: skip
        self.ran.setdefault(command, []).append(result)
        took = f"{text}\n(exit status {result.returncode} after {time.monotonic() - started:.1f} s)"
        output = f"{took}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        assert result.returncode == outcome.status, output
        assert not outcome.prints or re.search(outcome.prints, result.stdout, re.M), output

    def _serve(self, text: str, env: dict[str, str]) -> None:
        """``text`` with ``AUDITQL_PORT`` set to a free port: the README's 8000 may be
        taken (by the developer's own server, or another test run)."""
        port = free_port()
        log = self.logs / f"serve-{len(self.servers)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                ["bash", "-c", text], cwd=self.checkout, env={**env, "AUDITQL_PORT": str(port)},
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended on leaving
            )  # fmt: skip
        served = Served(text, f"http://127.0.0.1:{port}", process, log)
        self.servers.append(served)
        wait_healthy(text, process, served.base, log, deadline=time.monotonic() + 120)
        answer = httpx.post(f"{served.base}/graphql", json={"query": PROBE}, timeout=30).json()
        assert isinstance(answer.get("data", {}).get("posts", {}).get("totalCount"), int), answer

    def _psql(self, block: Block, statements: list[str]) -> None:
        """The statements typed into ``psql`` as the cluster's superuser, one by one."""
        assert self.cluster is not None, f"{block.readme}:{block.line}: SQL needs a cluster"
        result = subprocess.run(
            [str(self.cluster.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.cluster.port), "-U", "postgres"],
            input="\n".join(statements) + "\n", capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        for statement in statements:
            self.ran.setdefault(statement, []).append(result)
        assert result.returncode == 0, f"{statements}\n{result.stdout}{result.stderr}"
