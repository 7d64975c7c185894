"""The GraphiQL playground on ``GET /graphql`` (development only), served from local assets.

The assets are pinned npm packages installed into ``gql/http/playground/node_modules`` by
``INSTALL_COMMAND``; nothing third-party is committed and the page names no CDN, so
the playground works with no internet. Mount ``assets_app()`` at ``{graphql_path}/assets``.
In development ``auditql serve`` installs them itself when they are missing
(``install_missing_assets``, :mod:`gql.http.playground_install`).

GraphiQL stays on 4.x, the last major that ships a self-contained UMD bundle (5.x is
ESM and monaco-based and would need a bundler), with React 18, the last React with UMD
builds: three script tags, no build step. The bundle includes the graphql-ws client, so
subscriptions run over WebSocket on the same path with nothing more to serve.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import threading
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from gql.http import playground_install as install

PLAYGROUND_DIR = Path(__file__).with_name("playground")
# Run from the repository root: "npm --prefix gql/http/playground ci". The lock file
# pins every package with its integrity hash; gql/http/playground/.npmrc keeps registry
# addresses out of it and disables scripts.
INSTALL_COMMAND = shlex.join(install.command(PLAYGROUND_DIR.relative_to(PLAYGROUND_DIR.parents[2])))

# The whitelist: the only files served, as (npm package, path inside it). They are
# served under "<package>@<installed version>/<file name>", so a version bump changes
# every URL and the year-long cache below never serves a stale bundle.
_ASSETS = (
    ("react", "umd/react.production.min.js"),
    ("react-dom", "umd/react-dom.production.min.js"),
    ("graphiql", "graphiql.min.js"),
    ("graphiql", "graphiql.min.css"),
)
_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_CACHE = {"Cache-Control": "public, max-age=31536000, immutable"}
# Everything the page loads comes from this origin; GraphiQL styles elements inline and
# its CSS embeds fonts and icons as data: URIs. Subscriptions connect to ws: or wss: of
# the page's own host, named outright: 'self' covers them only since Chrome 71 and
# Safari 16.
# Ref: https://developer.mozilla.org/en-US/docs/Web/HTTP/Reference/Headers/Content-Security-Policy/connect-src
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'{websockets}; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# A Host header as browsers send it: a name or an IPv4 address, or an [IPv6] address,
# with an optional port. Anything else names no WebSocket source in the policy.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def _installed_version(package: str) -> str | None:
    """The version installed in node_modules, or None if it is missing or not the pinned one."""
    try:
        pinned = json.loads((PLAYGROUND_DIR / "package.json").read_text())["dependencies"]
        manifest = PLAYGROUND_DIR / "node_modules" / package / "package.json"
        installed = json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return str(installed) if installed == pinned.get(package) else None


def _asset_files() -> dict[str, Path]:
    """URL path (below the assets mount) -> file, for the whitelisted files present."""
    files: dict[str, Path] = {}
    for package, relative in _ASSETS:
        version = _installed_version(package)
        path = PLAYGROUND_DIR / "node_modules" / package / relative
        if version is not None and path.is_file():
            files[f"{package}@{version}/{path.name}"] = path
    return files


def assets_available() -> bool:
    """Whether the install step has put the pinned version of every asset in place."""
    return len(_asset_files()) == len(_ASSETS)


def assets_app() -> ASGIApp:
    """Serves the whitelisted asset files, with long cache headers; anything else is a 404."""

    async def serve(request: Request) -> Response:
        path = _asset_files().get(request.path_params["asset"])
        if path is None:
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=_CACHE)

    return Router(routes=[Route("/{asset:path}", serve, methods=["GET", "HEAD"])])


def install_missing_assets() -> threading.Thread | None:
    """Development start-up: the install of missing assets, in the background, when
    Node.js and npm are here (:func:`gql.http.playground_install.start`)."""
    return None if assets_available() else install.start(PLAYGROUND_DIR)


_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>auditql · GraphiQL</title>
  <link rel="icon" href="data:,">
  <style>body {{ margin: 0; }} #graphiql {{ height: 100dvh; }}</style>
  {stylesheets}
  {scripts}
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script>
    const url = new URL({endpoint}, location.href);
    const websocket = new URL(url);
    websocket.protocol = location.protocol.replace("http", "ws");
    // Subscriptions go over WebSocket (graphql-transport-ws); the Headers tab becomes the
    // connection_init payload, so the same {{"Authorization": ...}} signs them in.
    const fetcher = GraphiQL.createFetcher({{ url: url.href, subscriptionUrl: websocket.href }});
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {{
        fetcher,
        defaultQuery: {default_query},
        // Tokens go in the Headers tab: {{"Authorization": "Bearer aq_..."}}.
        isHeadersEditorEnabled: true,
        shouldPersistHeaders: true,
        defaultEditorToolsVisibility: "headers",
      }}),
    );
  </script>
</body>
</html>
"""

_DEFAULT_QUERY = """\
# Sign in: paste a token into Headers below,
#   {"Authorization": "Bearer aq_..."}
# then run the query with Ctrl-Enter. Subscriptions run too, e.g.
#   subscription { commentAdded(postId: "...") { cursor comment { body } } }
{
  viewer {
    username
  }
}
"""

_UNAVAILABLE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8">{refresh}<title>auditql · GraphiQL: {title}</title></head>
<body>
  <h1>GraphiQL: {title}</h1>
  <p>The playground serves its JavaScript and CSS from pinned npm packages that are
  installed, not committed. {advice}</p>
  {command}
  <p>The API itself answers POST requests meanwhile.</p>
</body>
</html>
"""


def _unavailable_page() -> HTMLResponse:
    """Why GraphiQL cannot load yet, and what to do about it."""
    refresh, command = "", f"<pre>{html.escape(INSTALL_COMMAND)}</pre>"
    if install.installing(PLAYGROUND_DIR):
        title = "installing…"
        advice = "The server is installing them; this page reloads until they are in place."
        refresh, command = '<meta http-equiv="refresh" content="2">', ""
    elif not install.node_found():
        title = "Node.js and npm are missing"
        advice = (
            f"Installing them needs Node.js and npm (Debian, Ubuntu: "
            f"<code>{install.NODE_PACKAGES}</code>); then restart <code>auditql serve</code>, "
            "which installs them, or run from the repository root:"
        )
    else:
        title = "assets not installed"
        advice = (
            "<code>auditql serve</code> installs them when it starts in development (its "
            "log says why that failed). Or run, from the repository root, then reload:"
        )
    page = _UNAVAILABLE.format(refresh=refresh, title=title, advice=advice, command=command)
    return HTMLResponse(page, status_code=503, headers={"Cache-Control": "no-store"})


def _script_literal(value: str) -> str:
    """A JavaScript string literal that cannot close the surrounding <script>."""
    return json.dumps(value).replace("<", "\\u003c")


def _policy(host: str | None) -> str:
    """The page's Content-Security-Policy, for a page asked for at ``host`` (the Host header)."""
    websockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return _CSP.format(websockets=websockets)


def render_page(graphql_path: str = "/graphql", host: str | None = None) -> HTMLResponse:
    """The GraphiQL page; its fetcher POSTs JSON to ``graphql_path`` and subscribes over
    WebSocket at the same URL (ws: or wss:). ``host``, the request's Host header, is the
    WebSocket host its policy lets the page connect to."""
    if install.installing(PLAYGROUND_DIR) or not assets_available():
        return _unavailable_page()
    base = graphql_path.rstrip("/") + "/assets/"
    urls = {name.rsplit("/", 1)[1]: html.escape(base + name, quote=True) for name in _asset_files()}
    stylesheets = f'<link rel="stylesheet" href="{urls["graphiql.min.css"]}">'
    scripts = "\n  ".join(
        f'<script src="{urls[name]}"></script>'
        for name in ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js")
    )
    body = _PAGE.format(
        stylesheets=stylesheets,
        scripts=scripts,
        endpoint=_script_literal(graphql_path),
        default_query=_script_literal(_DEFAULT_QUERY),
    )
    return HTMLResponse(body, headers={"Content-Security-Policy": _policy(host)})
