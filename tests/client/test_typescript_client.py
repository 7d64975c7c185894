"""The TypeScript client example (client/), done as its README says: the README's shell
commands install it, generate its typed documents from schema.graphql, compile it with
``tsc`` in strict mode, prepare a database, start ``auditql serve`` in development and in
production (trusted documents only), and run the compiled client against each. Every
command in the README's ``sh`` blocks is run here; one this file does not know fails it.

``uv run auditql`` is run as this environment's console script, which is what it runs:
a nested ``uv run`` could re-sync the environment under the running suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.replication import replica_state, replicated, wait_for
from tests.support.server import AUDITQL, ROOT, Server, serving

CLIENT = ROOT / "client"
SCENARIOS = ["login", "posts", "conflict", "history", "apollo", "urql", "live"]
VITE_ORIGIN = "http://localhost:5173"
BUILD = "npm --prefix client run build"
_SERVE = re.compile(r"((?:AUDITQL_\w+=\S+ )*)uv run auditql serve")


@dataclass(frozen=True)
class Readme:
    """The README's commands, by what they do."""

    install: list[str]  # npm --prefix client ci / run codegen / run build
    prepare: list[str]  # uv run auditql ...: a user and data, before serving
    serve: list[dict[str, str]]  # each `uv run auditql serve`, as its environment
    run: str  # the client against a server

    @classmethod
    def read(cls) -> Readme:
        text = (CLIENT / "README.md").read_text()
        blocks = re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)
        commands = [line for block in blocks for line in block.splitlines() if line.strip()]
        install = [c for c in commands if c.startswith("npm --prefix client ")]
        served = [match for c in commands if (match := _SERVE.fullmatch(c))]
        servers = {match[0] for match in served}
        prepare = [c for c in commands if c.startswith("uv run auditql ") and c not in servers]
        run = [c for c in commands if c.endswith(" npm --prefix client start")]
        unknown = set(commands) - {*install, *servers, *prepare, *run}
        assert not unknown, f"README commands this test does not run: {unknown}"
        assert len(run) == 1, run
        return cls(install, prepare, [_environment(match[1]) for match in served], run[0])


def _environment(assignments: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in assignments.split())


def shell(command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = command.replace("uv run auditql ", f"{shlex.quote(AUDITQL)} ")
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def installed() -> bool:
    """Whether client/node_modules holds exactly what the lock pins (npm's own record of
    the tree; optional platform packages for other systems are absent by design)."""
    hidden = CLIENT / "node_modules" / ".package-lock.json"
    if not hidden.exists():
        return False
    locked = json.loads((CLIENT / "package-lock.json").read_text())["packages"]
    present = json.loads(hidden.read_text())["packages"]
    return all(locked.get(path) == entry for path, entry in present.items()) and all(
        path in present or entry.get("optional") for path, entry in locked.items() if path
    )


@pytest.fixture(scope="module")
def readme() -> Readme:
    return Readme.read()


@pytest.fixture(scope="module")
def generated(readme: Readme) -> None:
    """The README's install and codegen, in order: the typed documents and the manifest.
    `npm ci` is skipped when node_modules already matches the lock (CI installs it first)."""
    for command in readme.install:
        if command.startswith("npm --prefix client ci") and installed():
            continue
        if command != BUILD:
            result = shell(command)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def built(readme: Readme, generated: None) -> subprocess.CompletedProcess[str]:
    """The README's build: ``tsc``, strict, into client/dist."""
    assert BUILD in readme.install
    result = shell(BUILD)
    assert result.returncode == 0, f"{BUILD}\n{result.stdout}\n{result.stderr}"
    return result


def serve(readme: Readme, mode: str, folder: Path) -> contextlib.AbstractContextManager[Server]:
    """The README's server of ``mode`` (development or production) on its own database,
    prepared by the README's commands."""
    [env] = [env for env in readme.serve if env.get("AUDITQL_ENVIRONMENT", "development") == mode]
    database = {"AUDITQL_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'auditql.db'}"}
    for command in readme.prepare:
        result = shell(command, {**database, "AUDITQL_ENVIRONMENT": "development"})
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return serving({"AUDITQL_ENVIRONMENT": mode, **env, **database}, folder / "server.log")


@pytest.fixture(scope="module")
def development(readme: Readme, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(readme, "development", tmp_path_factory.mktemp("development")) as server:
        yield server


@pytest.fixture(scope="module")
def production(
    readme: Readme, generated: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Runs only the documents of the manifest that `npm run codegen` wrote."""
    with serve(readme, "production", tmp_path_factory.mktemp("production")) as server:
        yield server


def run_client(
    readme: Readme, server: Server
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """The README's client command against ``server``: its result and each scenario's
    line (after its ``ok`` or ``FAIL``), by name, in order."""
    result = shell(readme.run, {"AUDITQL_URL": f"{server.base}/graphql"})
    lines = dict(re.findall(r"^(?:ok  |FAIL) (\w+): (.*)$", result.stdout, re.M))
    return result, lines


def texts_sent(apollo_line: str) -> int:
    """How many of Apollo's requests carried a document's text, not its hash alone."""
    sent = re.search(r"\b(\d+) sent their text", apollo_line)
    assert sent is not None, apollo_line
    return int(sent[1])


def test_the_client_compiles_with_tsc_strict(built: subprocess.CompletedProcess[str]) -> None:
    assert '"strict": true' in (CLIENT / "tsconfig.json").read_text()
    assert "error" not in built.stdout, built.stdout
    assert (CLIENT / "dist" / "main.js").exists()


def test_the_lock_pins_versions_and_hashes_but_no_registry() -> None:
    manifest = json.loads((CLIENT / "package.json").read_text())
    pins = {**manifest["dependencies"], **manifest["devDependencies"]}
    ranges = {name: version for name, version in pins.items() if not version[0].isdigit()}
    assert ranges == {}
    lock = (CLIENT / "package-lock.json").read_text()
    assert "resolved" not in lock
    packages = json.loads(lock)["packages"]
    assert all(entry.get("integrity") for path, entry in packages.items() if path)


def every_scenario_passes(readme: Readme, server: Server) -> dict[str, str]:
    """Runs the client against ``server``, checks every scenario passed, and returns
    each one's line."""
    result, lines = run_client(readme, server)
    assert (result.returncode, list(lines)) == (0, SCENARIOS), result.stdout + result.stderr
    assert all(f"ok   {name}:" in result.stdout for name in SCENARIOS), result.stdout
    return lines


@pytest.mark.usefixtures("built")
def test_every_scenario_passes_against_a_development_server(
    readme: Readme, development: Server
) -> None:
    lines = every_scenario_passes(readme, development)
    # Automatic persisted queries: the server knew no hash, so each document's text
    # was sent once after its hash.
    assert texts_sent(lines["apollo"]) > 0, lines["apollo"]


@pytest.mark.usefixtures("built")
def test_every_scenario_passes_against_a_production_server_of_trusted_documents(
    readme: Readme, production: Server
) -> None:
    lines = every_scenario_passes(readme, production)
    # The manifest holds every hash: no document text had to follow one.
    assert texts_sent(lines["apollo"]) == 0, lines["apollo"]


def test_the_production_server_runs_no_document_outside_the_manifest(production: Server) -> None:
    base = production.base
    for response in (
        httpx.post(f"{base}/graphql", json={"query": "{ viewer { id } }"}),
        httpx.get(f"{base}/graphql", params={"query": "{ viewer { id } }"}),
    ):
        body = response.json()
        assert body.get("data") is None, body
        assert body["errors"], body


def test_the_development_server_lets_the_vite_origin_through_cors(development: Server) -> None:
    response = httpx.options(
        f"{development.base}/graphql",
        headers={
            "Origin": VITE_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.headers.get("access-control-allow-origin") == VITE_ORIGIN


@pytest.mark.usefixtures("built")
def test_a_client_that_writes_then_reads_never_misses_its_write_on_a_lagging_replica(
    readme: Readme, postgres_bindir: Path, tmp_path: Path
) -> None:
    """The server reads from a replica that applies every commit a second late. The
    client passes the consistency token of its last write along (transport.ts): every
    scenario sees its writes. Without the tokens the same run reads stale data."""
    with replicated(postgres_bindir) as replication:
        replication.create_database("client")
        database = {"AUDITQL_DATABASE_URL": replication.primary.url("client")}
        for command in ("uv run auditql migrate", *readme.prepare):
            result = shell(command, database)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        replication.wait_caught_up()
        replication.set_apply_delay(1)
        env = {
            **database,
            "AUDITQL_DATABASE_REPLICA_URLS": replication.replica.url("client"),
            "AUDITQL_REPLICA_MAX_LAG": "30",  # in rotation, a second behind
            "AUDITQL_REPLICA_WAIT_MS": "3000",
        }
        with serving(env, tmp_path / "server.log") as server:
            wait_for(lambda: replica_state(server.base)["inRotation"], "the replica serves")
            with_tokens, lines = run_client(readme, server)
            without = shell(
                readme.run,
                {"AUDITQL_URL": f"{server.base}/graphql", "AUDITQL_READ_YOUR_WRITES": "off"},
            )
    assert (with_tokens.returncode, list(lines)) == (0, SCENARIOS), with_tokens.stdout
    assert without.returncode == 1, without.stdout
    assert "FAIL" in without.stdout
