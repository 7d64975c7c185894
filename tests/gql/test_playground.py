"""The GraphiQL playground: served from local assets, driven in a real headless Chromium
(a query over HTTP, a subscription over WebSocket), and installed by ``auditql serve`` in
development when they are missing.

The browser tests need Debian's ``chromium`` and the installed assets
(``gql.http.playground.INSTALL_COMMAND``); the install tests need Node.js and npm and
reach the npm registry. Without them they are skipped locally and fail in CI.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from gql.cli import server
from gql.http import playground
from gql.http import playground_install as install
from gql.http.app import create_app
from gql.schema.ids import to_global_id
from gql.settings import Settings
from persistence import migrations
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.unit_of_work import UnitOfWork
from tests.conftest import IN_CI
from tests.factories.post import create_post
from tests.gql.conftest import Scene, make_person

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page
    from playwright.sync_api import Request as PlaywrightRequest

CHROMIUM = Path("/usr/bin/chromium")
# Without these Chromium calls home (updates, sync, field trials) from a fresh profile.
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
    # Belt and braces: a host name that is not local resolves to nothing, so a stray
    # request cannot leave the machine (it is still recorded, and fails the test).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
NPM_FILES = [
    playground.PLAYGROUND_DIR / name for name in ("package.json", "package-lock.json", ".npmrc")
]


def missing(reason: str) -> NoReturn:
    """Skip for a missing browser-test prerequisite; in CI (CI=true) fail instead."""
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
async def served_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Development mode (the playground is development-only), on a migrated database."""
    database = tmp_path_factory.mktemp("playground") / "app.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{database}")
    migrating = Database.from_settings(settings)
    await migrations.run(migrating.engine, "upgrade", "head")
    await migrating.dispose()
    return settings


@pytest.fixture(scope="module")
def served_app(served_settings: Settings) -> ASGIApp:
    """The real application."""
    return create_app(served_settings)


@pytest.fixture(scope="module")
async def draft(served_settings: Settings) -> AsyncIterator[Scene]:
    """An author with a token, and a draft post of hers: only she may see it."""
    database = Database.from_settings(served_settings)
    author = await make_person(database, "author")
    async with UnitOfWork(database, AuditContext(actor_id=author.user.id)) as uow:
        post = await create_post(uow, title="Draft")
    yield Scene(database, author.token, to_global_id("Post", post.id), post.id)
    await database.dispose()


@pytest.fixture(scope="module")
def live_url(served_app: ASGIApp) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (a free port), in a background thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(served_app, log_level="warning", lifespan="auto"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start in time"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@dataclass
class Browsing:
    """A page in headless Chromium with a fresh profile, and what it did."""

    page: Page
    requests: list[PlaywrightRequest] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)  # their URLs
    frames_sent: list[str] = field(default_factory=list)  # over any of them
    page_errors: list[str] = field(default_factory=list)  # uncaught, and console errors

    def foreign(self) -> list[str]:
        """The URLs it reached that are not on this machine."""
        urls = [request.url for request in self.requests] + self.websockets
        return [url for url in urls if urlsplit(url).hostname not in LOCAL_HOSTS]


@contextlib.contextmanager
def chromium() -> Iterator[Browsing]:
    """A page in Chromium that records what it does, once the playground's browser-test
    prerequisites are here."""
    if not CHROMIUM.is_file():
        missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    if not playground.assets_available():
        missing(f"assets missing: run {playground.INSTALL_COMMAND}")
    try:
        from playwright.sync_api import WebSocket, sync_playwright
    except ImportError:
        missing("playwright is missing (a dev dependency: uv sync)")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context()
        seen = Browsing(context.new_page())

        def websocket(opened: WebSocket) -> None:
            seen.websockets.append(opened.url)
            opened.on("framesent", lambda payload: seen.frames_sent.append(str(payload)))

        context.on("request", lambda request: seen.requests.append(request))
        seen.page.on("websocket", websocket)
        seen.page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
        seen.page.on(
            "console",
            lambda message: (
                seen.page_errors.append(message.text) if message.type == "error" else None
            ),
        )
        try:
            yield seen
        finally:
            context.close()
            browser.close()


def run_in_playground(page: Page, url: str, headers: str, document: str) -> Locator:
    """Opens the playground at ``url``, pastes ``headers`` into the Headers tab, types
    ``document`` into the (emptied) editor and runs it; the Result Window."""
    from playwright.sync_api import expect

    page.goto(url, wait_until="networkidle")
    expect(page).to_have_title(re.compile("GraphiQL"))
    editor = page.get_by_role("region", name="Query Editor").locator(".CodeMirror")
    headers_editor = page.get_by_role("region", name="Headers").locator(
        ".graphiql-editor:not(.hidden) .CodeMirror"
    )
    result = page.get_by_role("region", name="Result Window")
    expect(editor).to_be_visible()
    expect(page.get_by_role("button", name="Headers")).to_be_visible()
    expect(headers_editor).to_be_visible()
    expect(result).not_to_contain_text("__typename")

    # Pasted, as a developer pastes {"Authorization": "Bearer aq_..."}.
    headers_editor.click()
    page.keyboard.insert_text(headers)
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    # Typed key by key; CodeMirror closes brackets and quotes itself and types over them.
    page.keyboard.type(document)
    page.keyboard.press("Escape")  # the autocomplete popup, if any
    # GraphiQL reads the editor 100 ms after the last key, and saves it then: run sooner
    # and it runs the document before (as a query, over HTTP, whatever the new one is).
    page.wait_for_function("text => localStorage.getItem('graphiql:query') === text", arg=document)
    page.keyboard.press("ControlOrMeta+Enter")
    return result


def test_playground_runs_a_query_with_no_request_leaving_the_machine(live_url: str) -> None:
    from playwright.sync_api import expect

    with chromium() as browsing:
        # A header that any server accepts, so this test needs no token.
        headers = '{"X-Request-ID": "playground-test"}'
        result = run_in_playground(browsing.page, f"{live_url}/graphql", headers, "{ __typename }")
        expect(result).to_contain_text('"__typename": "Query"')

    urls = [request.url for request in browsing.requests]
    assert browsing.foreign() == [], f"requests left the machine: {browsing.foreign()}"
    assert browsing.page_errors == [], (browsing.page_errors, urls)
    operations = [
        request
        for request in browsing.requests
        if request.method == "POST" and "__typename }" in (request.post_data or "")
    ]
    assert len(operations) == 1, urls
    assert json.loads(operations[0].post_data or "")["query"] == "{ __typename }"
    assert operations[0].headers["x-request-id"] == "playground-test"


def test_playground_runs_a_subscription_signed_in_by_its_headers(
    live_url: str, draft: Scene
) -> None:
    """A subscription to the comments of a draft post, which only its author may see: it
    runs over WebSocket, signed in by the Headers tab, and shows a comment written over
    HTTP meanwhile."""
    from playwright.sync_api import expect

    # "0": from the post's first comment, so the one written below arrives whether the
    # server starts the subscription before or after it commits.
    selection = "{ cursor comment { body } }"
    document = f'subscription {{ commentAdded(postId: "{draft.post_id}", after: "0") {selection} }}'
    with chromium() as browsing:
        result = run_in_playground(
            browsing.page, f"{live_url}/graphql", json.dumps(draft.bearer), document
        )
        written = httpx.post(
            f"{live_url}/graphql",
            json={
                "query": "mutation($input: CreateCommentInput!) "
                "{ createComment(input: $input) { __typename } }",
                "variables": {"input": {"postId": draft.post_id, "body": "Written over HTTP"}},
            },
            headers=draft.bearer,
        ).json()
        assert written == {"data": {"createComment": {"__typename": "CommentSuccess"}}}, written
        expect(result).to_contain_text('"body": "Written over HTTP"')
        expect(result).to_contain_text('"cursor": "')

    assert browsing.foreign() == [], f"requests left the machine: {browsing.foreign()}"
    assert browsing.page_errors == [], browsing.page_errors
    assert browsing.websockets == [f"{live_url.replace('http:', 'ws:')}/graphql"]
    sent = [json.loads(frame) for frame in browsing.frames_sent]
    assert sent[0] == {"type": "connection_init", "payload": draft.bearer}, sent
    [subscribe] = [message for message in sent if message["type"] == "subscribe"]
    assert subscribe["payload"]["query"] == document
    # The operation went over the WebSocket alone.
    assert not any("commentAdded" in (request.post_data or "") for request in browsing.requests)


def test_page_policy_lets_it_connect_to_its_own_websocket_url(live_url: str) -> None:
    """Named outright, not left to 'self', which older browsers do not apply to ws:."""
    if not playground.assets_available():
        missing(f"assets missing: run {playground.INSTALL_COMMAND}")
    host = urlsplit(live_url).netloc
    with httpx.Client(base_url=live_url) as client:
        page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert f"connect-src 'self' ws://{host} wss://{host};" in policy, policy
    for hostile in ("evil.example; script-src *", "a b", ""):
        policy = playground.render_page(host=hostile).headers["content-security-policy"]
        assert "connect-src 'self';" in policy, hostile


def test_assets_are_whitelisted_and_cached_for_long(live_url: str) -> None:
    if not playground.assets_available():
        missing(f"assets missing: run {playground.INSTALL_COMMAND}")
    page = bytes(playground.render_page("/graphql").body).decode()
    urls = [url for url in re.findall(r'(?:src|href)="([^"]+)"', page) if url != "data:,"]
    assert len(urls) == 4
    assert all(url.startswith("/graphql/assets/") for url in urls), urls
    assert not re.search(r"https?:|=\"//", page), "the page names another host"

    with httpx.Client(base_url=live_url) as client:
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        graphiql = next(url for url in urls if url.endswith("/graphiql.min.js"))
        for url in (
            graphiql.replace("graphiql.min.js", "package.json"),
            graphiql.replace("graphiql.min.js", "%2e%2e/%2e%2e/package-lock.json"),
            "/graphql/assets/graphiql/graphiql.min.js",
            "/graphql/assets/node_modules/react/umd/react.production.min.js",
        ):
            assert client.get(url).status_code == 404, url


def test_page_without_assets_says_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(playground, "PLAYGROUND_DIR", tmp_path)
    assert not playground.assets_available()
    response = playground.render_page()
    assert response.status_code == 503
    assert playground.INSTALL_COMMAND in bytes(response.body).decode()


def test_page_without_node_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(playground, "PLAYGROUND_DIR", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # neither node nor npm on it
    with caplog.at_level(logging.INFO, logger=install.__name__):
        assert playground.install_missing_assets() is None
    [logged] = caplog.records
    assert "Node.js and npm" in logged.getMessage()
    response = playground.render_page()
    page = bytes(response.body).decode()
    assert response.status_code == 503
    assert "Node.js and npm" in page
    assert "apt-get install nodejs npm" in page
    assert playground.INSTALL_COMMAND in page


def npm_files(directory: Path) -> Path:
    """The playground's npm files in ``directory``, with nothing installed."""
    if not install.node_found():
        missing("Node.js and npm are missing (apt-get install nodejs npm)")
    directory.mkdir(exist_ok=True)
    for path in NPM_FILES:
        shutil.copy(path, directory)
    return directory


@pytest.mark.parametrize("environment", ["development", "production"])
def test_serve_installs_missing_assets_in_the_background_in_development_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environment: str
) -> None:
    monkeypatch.setattr(playground, "PLAYGROUND_DIR", npm_files(tmp_path / "playground"))
    pages: list[str] = []  # what GET /graphql answers as the server starts

    def run(_server: object) -> None:
        pages.append(bytes(playground.render_page().body).decode())

    monkeypatch.setattr(server._Server, "run", run)
    # The collector tuned for a server process would stay tuned for the whole test run.
    monkeypatch.setattr(server, "_tune_garbage_collector", lambda: None)
    settings = Settings(
        environment=environment,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        allow_sqlite_in_production=True,
    )
    server.serve(settings, "127.0.0.1", 8000)

    [page] = pages
    if environment == "production":
        assert "installing" not in page
        assert not (playground.PLAYGROUND_DIR / "node_modules").exists()
        return
    assert "GraphiQL: installing…" in page
    assert '<meta http-equiv="refresh"' in page
    assert playground.install_missing_assets() is None  # one install at a time
    deadline = time.monotonic() + 180
    while install.installing(playground.PLAYGROUND_DIR):
        assert time.monotonic() < deadline, "the install did not end in time"
        time.sleep(0.2)
    assert playground.assets_available()
    assert playground.render_page().status_code == 200


def test_a_failed_install_logs_one_line_and_the_page_names_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = npm_files(tmp_path)
    (directory / "package-lock.json").unlink()  # npm ci refuses to install without it
    monkeypatch.setattr(playground, "PLAYGROUND_DIR", directory)
    with caplog.at_level(logging.INFO, logger=install.__name__):
        installing = playground.install_missing_assets()
        assert installing is not None
        installing.join(timeout=60)
    [failure] = [record for record in caplog.records if record.levelno >= logging.WARNING]
    message = failure.getMessage()
    assert "\n" not in message
    assert "exit status 1" in message
    assert f"npm --prefix {directory} ci" in message
    response = playground.render_page()
    assert response.status_code == 503
    assert playground.INSTALL_COMMAND in bytes(response.body).decode()


def test_npm_files_pin_versions_and_record_no_registry_address() -> None:
    manifest = json.loads((playground.PLAYGROUND_DIR / "package.json").read_text())
    versions = manifest["dependencies"].values()
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in versions), versions
    lock = json.loads((playground.PLAYGROUND_DIR / "package-lock.json").read_text())
    packages = {name: entry for name, entry in lock["packages"].items() if name}
    assert packages
    assert all("resolved" not in entry for entry in packages.values())
    assert all(entry["integrity"].startswith("sha512-") for entry in packages.values())
