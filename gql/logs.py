"""Logging: JSON lines in production, readable lines in development, and the request id
on every line (uvicorn's access and error logs included).

Nothing here logs headers, bodies or variables, so tokens and passwords never reach a
log line; `tests/gql/test_logs.py` checks that over a login and an authenticated request.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.orjson import OrjsonFormatter

from gql.request_id import current_request_id
from gql.settings import Settings

_CONSOLE = "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") or record.request_id is None:
            record.request_id = current_request_id.get() or "-"
        return True


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route every logger (uvicorn's too) through one handler on ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    if settings.json_logs:
        handler.setFormatter(
            OrjsonFormatter(
                _JSON_FIELDS,
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter(_CONSOLE))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # start-up chatter
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
