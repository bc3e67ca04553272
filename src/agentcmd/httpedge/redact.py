"""Secrets out of logs: the event key in ``/e/<key>`` paths.

The event API carries its key in the URL path (the Inngest wire protocol),
so any log line with the path would print the key: access logs and error
logs show ``/e/<redacted>`` instead. ``install_access_log_filter`` does the
same to uvicorn's access log records.
"""

from __future__ import annotations

import logging
import re

_EVENT_KEY_PATH = re.compile(r"(/e/)[^/?#\s\"']+")
REDACTED = "<redacted>"


def redact_path(path: str) -> str:
    """``/e/abc123?x`` -> ``/e/<redacted>?x``; other paths unchanged."""
    return _EVENT_KEY_PATH.sub(r"\1" + REDACTED, path) if "/e/" in path else path


class RedactFilter(logging.Filter):
    """Redacts event keys from a record's message arguments (uvicorn's access log passes the path as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact_path(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact_path(record.msg)
        return True


def install_access_log_filter() -> None:
    """Redact event keys in uvicorn's access and error logs (idempotent)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactFilter) for f in logger.filters):
            logger.addFilter(RedactFilter())
