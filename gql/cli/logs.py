"""Logging: JSON lines in production, readable lines in development, and the request id
on every line (uvicorn's access and error logs included).

Nothing here logs headers, bodies or variables, so tokens and passwords sent where they
belong never reach a log line. What a client puts where it does not belong is redacted
from every line as it is written: the query string of an access line (where
``?access_token=...`` would land) and anything shaped like an API token, wherever it
appears (a path, an operation name). ``tests/gql/test_logs.py`` checks a login and an
authenticated request; ``tests/gql/test_log_redaction.py`` sends tokens every way to a
real server and greps its whole log.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from pythonjsonlogger.orjson import OrjsonFormatter

from gql.http.request_id import current_request_id
from gql.settings import Settings
from persistence.security import TOKEN_PREFIX

_CONSOLE = "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"


# An API token: the prefix, then URL-safe base64. Shorter runs (the 9-character prefix
# shown in `apiTokens`) are not secrets.
_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{16,}")
_REDACTED_TOKEN = f"{TOKEN_PREFIX}[redacted]"
_ACCESS = "uvicorn.access"
_ACCESS_ARGS = 5  # uvicorn's access line: client, method, path?query, HTTP version, status


class RedactingFormatter(logging.Formatter):
    """Another formatter's lines, with no query string in access lines and no token
    anywhere (the message, the traceback, every field of a JSON line)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple) and len(args) == _ACCESS_ARGS and record.name == _ACCESS:
            path, query, _ = str(args[2]).partition("?")
            record.args = (args[0], args[1], path + (query and "?[redacted]"), *args[3:])
        return _TOKEN.sub(_REDACTED_TOKEN, self.inner.format(record))


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") or record.request_id is None:
            record.request_id = current_request_id.get() or "-"
        return True


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route every logger (uvicorn's too) through one handler on ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    formatter: logging.Formatter
    if settings.json_logs:
        formatter = OrjsonFormatter(
            _JSON_FIELDS,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    else:
        formatter = logging.Formatter(_CONSOLE)
    handler.setFormatter(RedactingFormatter(formatter))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # start-up chatter
    if settings.db_echo:
        # Through this handler, like every line (SQLAlchemy's echo=True would add its
        # own); the engines hide statements' parameters.
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
