"""Every command in the READMEs' fenced ``sh`` and ``sql`` blocks runs here as written,
or TABLE says why not. A command TABLE does not name fails
``test_every_command_is_classified``, so a new one cannot go untested silently, and an
entry no README has any more fails it too.

Where they run: in a fresh copy of the repository, made once for this module from what
git would commit now (``git ls-files --cached --others --exclude-standard``: tracked files
and new unignored ones, with their working-tree contents) and nothing it ignores: no
``.venv``, ``uv.lock``, ``node_modules`` or ``auditql.db``. So the first ``uv run`` there
builds its own environment, as on a fresh clone (some seconds, and it needs the package
index or uv's cache); ``./auditql.db`` is the copy's, and npm installs into the copy.
Nothing of the developer's is touched. Each command is its README text given to
``bash -c``, in the copy's root, in a fresh shell's environment: without the suite's
virtual environment (``VIRTUAL_ENV``, its ``bin`` on ``PATH``) or ``AUDITQL_*`` settings.

What differs from typing them, and why:

- A server (``Serve``) gets ``AUDITQL_PORT``, a free port: 8000 may be taken by the
  developer's own server or another test run.
- PostgreSQL: "Using PostgreSQL" and "Database roles" each get a fresh throwaway cluster
  (both create the database ``auditql``) on a free port. Their commands name
  ``localhost:5432``; only the port is replaced. The cluster checks passwords
  (scram-sha-256) for every role but its superuser, so the README's passwords must
  agree. The ``sql`` blocks are typed into ``psql`` as the superuser (the README's
  ``sudo -u postgres psql``).
- A command runs without a terminal, so a prompt reads its answers from stdin.
- ``export NAME=VALUE`` sets NAME for the following commands of its block.
- In "First steps", the server keeps running while the next blocks run (the README's
  "in another shell"), and the README's GraphQL documents are sent to it with the
  headers ``seed-demo`` printed and the password the README's ``login`` names.

Slow: about 70 s in all, nearly all of it in the tests that run commands (each ``uv run
auditql`` starts Python and imports the app, about 3 s; npm's install, about 10 s; two
PostgreSQL clusters). The classification tests take milliseconds.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI
from tests.support.postgres import PostgresCluster, find_bindir
from tests.support.readme import Block, read_blocks
from tests.support.server import ROOT
from tests.support.terminal import Export, LeftToCI, NotRun, Outcome, Run, Serve, Terminal

READMES = ("README.md", "client/README.md")
TOKEN_HEADER = r'^\{"Authorization": "Bearer aq_[A-Za-z0-9_-]{43}"\}$'
DOCKER = (
    "needs Docker with the compose plugin, which the test machine lacks; CI validates "
    "compose.yaml against the compose specification, and tests/container builds and runs "
    "the image with podman (AUDITQL_CONTAINER_CHECK=1)"
)

ERASURE = (
    "examples for an operator's own users and keys; tests/gql/test_erasure.py runs "
    "erase-user and rotate-audit-keys on both databases"
)

CLIENT_TEST = (
    "tests/client/test_typescript_client.py runs every command of client/README.md (and "
    "fails on one it does not know); a second npm install here would add about a minute"
)

TABLE: dict[str, dict[str, Outcome]] = {
    "README.md": {
        "uv run auditql serve": Serve(),
        "uv run pytest": LeftToCI("this suite itself"),
        "uv run auditql seed-demo": Run(prints=TOKEN_HEADER),
        "uv run auditql create-user you@example.com you --superuser": Run(
            # The password the README's login mutation then signs in with, twice. The
            # prompts, without a terminal, go to stdout with no line break after them.
            prints=r"created user \S+ \(you\)$",
            stdin="your password\n" * 2,
        ),
        # 0.2.0 broke the contract on purpose: the command lists it and exits 1.
        "uv run auditql export-schema --check-breaking tests/gql/schema-0.1.0.graphql": Run(
            prints=r"^[1-9]\d* breaking, \d+ dangerous$", status=1
        ),
        # `auditql serve` installs the assets itself now; the README may drop this.
        "npm --prefix gql/http/playground ci": Run(optional=True),
        "CREATE ROLE auditql LOGIN PASSWORD 'secret';": Run(),
        "CREATE DATABASE auditql OWNER auditql;": Run(),
        "export AUDITQL_DATABASE_URL=postgresql+asyncpg://auditql:secret@localhost:5432/auditql": (
            Export()
        ),
        "uv run auditql migrate": Run(prints=r"^migrated to head$"),
        "uv run auditql serve --no-migrate": Serve(),
        "CREATE ROLE auditql_owner LOGIN PASSWORD 'owner-secret';": Run(),
        "CREATE ROLE auditql_app LOGIN PASSWORD 'app-secret';": Run(),
        "CREATE DATABASE auditql OWNER auditql_owner;": Run(),
        "export AUDITQL_DATABASE_URL="
        "postgresql+asyncpg://auditql_owner:owner-secret@localhost:5432/auditql": Export(),
        "uv run auditql grant auditql_app": Run(prints=r"^granted auditql_app "),
        "AUDITQL_DATABASE_URL=postgresql+asyncpg://auditql_app:app-secret@localhost:5432/auditql"
        " uv run auditql serve --no-migrate": Serve(),
        'echo "AUDITQL_AUDIT_SIGNING_KEY=ed25519:k1:$(openssl rand -base64 32)"': Run(
            prints=r"^AUDITQL_AUDIT_SIGNING_KEY=ed25519:k1:[A-Za-z0-9+/]{43}=$"
        ),
        # On the checkout's database: empty, or what "First steps" wrote, if it ran first.
        "uv run auditql audit verify": Run(
            prints=r"^(the audit trail has no entries yet: nothing to verify|checked positions "
            r"1 to \d+ \(\d+ entries\) from the genesis, of \d+: ok)$"
        ),
        "uv run auditql audit export --before 2026-11-01 --output audit-2026-10.jsonl.gz": NotRun(
            "an example for a trail with entries before the date; "
            "tests/gql/test_audit_retention.py runs export, verify --export and prune so"
        ),
        "uv run auditql audit verify --export audit-2026-10.jsonl.gz": NotRun(
            "needs the export above; tests/gql/test_audit_retention.py verifies one so"
        ),
        "uv run auditql audit prune --before 2026-11-01 --export audit-2026-10.jsonl.gz": NotRun(
            "needs the export above; tests/gql/test_audit_retention.py prunes so"
        ),
        "docker compose up --build": NotRun(DOCKER),
        "docker compose build": NotRun(DOCKER),
        "docker compose run --rm migrate": NotRun(DOCKER),
        "docker compose up -d api": NotRun(DOCKER),
        "AUDITQL_DATABASE_URL=postgresql+asyncpg://... uv run alembic revision --autogenerate"
        ' -m "bookmarks"': NotRun(
            "a template (`...` is your database's URL) that writes a new migration; "
            "tests/persistence/test_migrations.py generates one the same way and lints it"
        ),
        "uv run auditql erase-user 42": NotRun(ERASURE),
        "uv run auditql rotate-audit-keys": NotRun(ERASURE),
        "uv run python -m bench": NotRun("takes about 11 minutes and needs two idle cores"),
        "uv run python -m bench --small": LeftToCI("takes about a minute"),
        "uv run python -m bench --audit 1000000": NotRun(
            "about 3 minutes of both cores; the README gives its figures"
        ),
        "uv run python -m bench --live": NotRun(
            "about 2.5 minutes of both cores, 1,000 WebSockets; the README gives its figures"
        ),
        "uv run python -m bench --scale": NotRun(
            "a benchmark of several minutes that needs two idle cores; it asserts nothing"
        ),
        "uv run ruff check . && uv run ruff format --check . && uv run mypy": LeftToCI(
            "about 20 s in a fresh copy, for nothing CI does not already check"
        ),
        "bash .ci/run": NotRun(
            "CI itself: installs system packages with apt-get, then runs everything above"
        ),
    },
    "client/README.md": {
        command: NotRun(CLIENT_TEST)
        for command in (
            "npm --prefix client ci",
            "npm --prefix client run codegen",
            "npm --prefix client run build",
            "uv run auditql seed-demo",
            "uv run auditql create-user dev@example.com dev"
            " --password correct-horse-battery-staple",
            "AUDITQL_CORS_ALLOWED_ORIGINS=http://localhost:5173 uv run auditql serve",
            "AUDITQL_EMAIL=dev@example.com AUDITQL_PASSWORD=correct-horse-battery-staple"
            " npm --prefix client start",
            "AUDITQL_ENVIRONMENT=production AUDITQL_ALLOW_SQLITE_IN_PRODUCTION=true"
            " AUDITQL_AUDIT_KEY_FILE=auditql.keys.json"
            " AUDITQL_TRUSTED_DOCUMENTS=client/src/gql/persisted-documents.json"
            " uv run auditql serve",
        )
    },
}

# The sections whose commands a test runs, in README order, block by block: by the name of
# that test. A command to run anywhere else fails test_every_command_to_run_has_a_test.
RUN_BY = {
    ("README.md", "auditql"): "test_first_steps",
    ("README.md", "First steps"): "test_first_steps",
    ("README.md", "The API"): "test_the_api",
    ("README.md", "Playground"): "test_playground",
    ("README.md", "Using PostgreSQL"): "test_using_postgresql",
    ("README.md", "Database roles"): "test_database_roles",
    ("README.md", "Checkpoints and keys"): "test_audit_integrity",
    ("README.md", "Verifying"): "test_audit_integrity",
}


def blocks(readme: str) -> list[Block]:
    """``readme``'s blocks; while ``client/README.md`` is being written it may be missing
    (skipped locally, a failure in CI)."""
    if not (ROOT / readme).exists():
        message = f"{readme} does not exist"
        if IN_CI or readme == "README.md":
            pytest.fail(message)
        pytest.skip(f"{message} (yet; required in CI)")
    return read_blocks(ROOT, readme)


def outcome(block: Block, command: str) -> Outcome:
    return TABLE[block.readme][command]


def blocks_run_by(test: str) -> list[Block]:
    """The sh and sql blocks of the sections ``test`` runs, in README order."""
    return [
        block
        for readme in dict.fromkeys(readme for readme, _ in RUN_BY)
        for block in blocks(readme)
        if RUN_BY.get((readme, block.section)) == test and block.commands
    ]


def run_blocks(terminal: Terminal, test: str) -> None:
    to_run = blocks_run_by(test)
    assert to_run, f"none of the sections RUN_BY gives {test} has a command"
    for block in to_run:
        terminal.run(block)


@pytest.mark.parametrize("readme", READMES)
def test_every_command_is_classified(readme: str) -> None:
    commands = {command for block in blocks(readme) for command in block.commands}
    unknown = sorted(commands - set(TABLE[readme]))
    assert not unknown, (
        f"{readme} has commands tests/test_readme_commands.py does not know. Classify each "
        "in its TABLE: run it here (Run, Serve, Export, in a test RUN_BY names), or say "
        f"why not (NotRun, LeftToCI): {unknown}"
    )
    stale = sorted(
        command
        for command, entry in TABLE[readme].items()
        if command not in commands and not (isinstance(entry, Run) and entry.optional)
    )
    assert not stale, f"TABLE names commands {readme} no longer has; remove them: {stale}"


def test_commands_left_to_ci_are_in_ci() -> None:
    lines = [line.split(" #")[0].strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    for readme, entries in TABLE.items():
        for command, entry in entries.items():
            if isinstance(entry, LeftToCI):
                for part in command.split(" && "):
                    assert any(line == part or line.endswith(f" {part}") for line in lines), (
                        f"{readme}: .ci/run does not run {part!r}, so it must run here"
                    )


def test_every_command_to_run_has_a_test() -> None:
    for readme in READMES:
        if not (ROOT / readme).exists():
            continue
        for block in blocks(readme):
            for command in block.commands:
                entry = TABLE[readme].get(command)
                if entry is None or isinstance(entry, NotRun | LeftToCI):
                    continue
                test = RUN_BY.get((readme, block.section))
                assert test in globals(), (
                    f"{readme}:{block.line} ({block.section!r}): no test runs {command!r}; "
                    "name one in RUN_BY"
                )


@pytest.fixture(scope="module")
def checkout() -> Iterator[Path]:
    """A fresh copy of the repository: what git would commit, as it is now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    copy = Path(tempfile.mkdtemp(prefix="auditql-readme-"))
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.exists() or source.is_symlink():  # not deleted in the working tree
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name, follow_symlinks=False)
    yield copy
    shutil.rmtree(copy, ignore_errors=True)


def forget_database(checkout: Path) -> None:
    """A fresh start: no ``./auditql.db`` (nor what SQLite keeps beside it)."""
    for name in ("auditql.db", "auditql.db-wal", "auditql.db-shm", "auditql.db-journal"):
        (checkout / name).unlink(missing_ok=True)


def graphql(base: str, document: str, headers: dict[str, str] | None = None) -> Any:
    """The ``data`` of a successful answer to ``document``."""
    response = httpx.post(f"{base}/graphql", json={"query": document}, headers=headers, timeout=30)
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    return body["data"]


def root_field(document: str) -> str:
    """The first field an operation selects: ``viewer``, ``createPost``."""
    found = re.match(r"\s*(?:\w+[^{]*)?\{\s*(\w+)", document)
    assert found is not None, document
    return found[1]


def test_seed_demo_twice_on_a_fresh_database(checkout: Path, tmp_path: Path) -> None:
    """Before any ``serve``, it migrates ./auditql.db itself; again, a fresh token."""
    forget_database(checkout)
    [block] = [b for b in blocks("README.md") if "uv run auditql seed-demo" in b.commands]
    with Terminal(checkout, tmp_path, outcome) as terminal:
        terminal.run(block)
        terminal.run(block)
    first, again = terminal.ran["uv run auditql seed-demo"]
    assert first.stdout != again.stdout, "the second run printed the same token"


def test_first_steps(checkout: Path, tmp_path: Path) -> None:
    forget_database(checkout)
    with Terminal(checkout, tmp_path, outcome) as terminal:
        run_blocks(terminal, "test_first_steps")
        [server] = terminal.servers
        assert (checkout / "auditql.db").exists(), "serve's database is not ./auditql.db"
        [seeded] = terminal.ran["uv run auditql seed-demo"]
        headers = json.loads(seeded.stdout.splitlines()[-1])  # pasted into the Headers tab
        documents = {
            root_field(block.text): block.text
            for block in blocks("README.md")
            if block.section == "First steps" and block.language == "graphql"
        }
        assert set(documents) == {"viewer", "createPost", "login"}, documents
        assert graphql(server.base, documents["viewer"], headers)["viewer"] == {"username": "admin"}
        created = graphql(server.base, documents["createPost"], headers)["createPost"]
        assert created["__typename"] == "PostSuccess", created
        login = graphql(server.base, documents["login"])["login"]
        assert login["__typename"] == "TokenSuccess", login
        signed_in = {"Authorization": f"Bearer {login['token']}"}
        assert graphql(server.base, "{ viewer { username } }", signed_in)["viewer"] == {
            "username": "you"
        }
        terminal.stop()


def test_the_api(checkout: Path, tmp_path: Path) -> None:
    with Terminal(checkout, tmp_path, outcome) as terminal:
        run_blocks(terminal, "test_the_api")


def test_audit_integrity(checkout: Path, tmp_path: Path) -> None:
    with Terminal(checkout, tmp_path, outcome) as terminal:
        run_blocks(terminal, "test_audit_integrity")


def test_playground(checkout: Path, tmp_path: Path) -> None:
    to_run = blocks_run_by("test_playground")
    if not to_run:
        pytest.skip("the README's Playground section has no command now")
    with Terminal(checkout, tmp_path, outcome) as terminal:
        for block in to_run:
            terminal.run(block)
    assert (checkout / "gql/http/playground/node_modules/graphiql/package.json").exists()


# Every role but the superuser (the tests' own connections) signs in with its password.
PASSWORDS_CHECKED = """\
local all all                   trust
host  all postgres 127.0.0.1/32 trust
host  all all      127.0.0.1/32 scram-sha-256
"""


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A fresh PostgreSQL, as a machine has it before the README's setup."""
    bindir = find_bindir()
    if bindir is None:
        if IN_CI:
            pytest.fail("PostgreSQL server binaries are required in CI (CI=true)")
        pytest.skip("PostgreSQL server binaries not found (they are required in CI)")
    cluster = PostgresCluster(bindir).init()
    try:
        (cluster.datadir / "pg_hba.conf").write_text(PASSWORDS_CHECKED)
        yield cluster.start()
    finally:
        cluster.destroy()


def run_postgresql_section(test: str, checkout: Path, logs: Path, cluster: PostgresCluster) -> None:
    """The section's SQL as the superuser, then its shell blocks; its server is ready
    (the database is migrated) and stops cleanly."""
    with Terminal(checkout, logs, outcome, cluster=cluster) as terminal:
        run_blocks(terminal, test)
        [server] = terminal.servers
        assert httpx.get(f"{server.base}/ready", timeout=10).status_code == 200
        terminal.stop()


def test_using_postgresql(checkout: Path, tmp_path: Path, cluster: PostgresCluster) -> None:
    run_postgresql_section("test_using_postgresql", checkout, tmp_path, cluster)


def test_database_roles(checkout: Path, tmp_path: Path, cluster: PostgresCluster) -> None:
    """The owner migrates and grants; the application role serves."""
    run_postgresql_section("test_database_roles", checkout, tmp_path, cluster)
