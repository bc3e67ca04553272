"""Run and step ids on every log line about a run, and the JSON log format (docs/running.md "Logs").

The ids are two context variables set where a run is driven, not passed
to each log call:

* the engine binds them in ``Executor.call`` and ``Worker._handle`` (each
  queue item runs in its own asyncio task, which has its own context);
* the app server binds the run id per SDK request from the engine's
  ``X-Run-ID`` header (``RunLogMiddleware``), and each workflow step binds
  its step id (as the workflow names it) while its body runs (``tagged``,
  in ``workflows/steps.py``), so everything a workflow logs, in the
  request's task or a thread it starts (``asyncio.to_thread`` copies the
  context), carries them. The engine's ``step_id`` is its own (hashed) id
  of the step, as ``/v1/runs/{id}/steps`` shows it.

``RunContextFilter`` copies them onto each record (``record.run_id``,
``record.step_id``); ``JsonFormatter`` writes one JSON object per line with
them as fields. ``configure_logging`` picks the format from
``AGENTCMD_LOG_FORMAT`` (``json``, else the plain text the processes always
wrote): ``agentcmd dev|start --log-format json`` sets it for both children,
``agentcmd engine dev|start --log-format json`` for the engine alone, and
the supervisor passes their JSON lines through with a ``source`` field.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

T = TypeVar("T")
LOG_FORMAT_ENV = "AGENTCMD_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DISCOVERY_STEP = "step"      # the engine's step id of a call that discovers the next step (no step yet)

run_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("agentcmd_run_id", default=None)
step_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("agentcmd_step_id", default=None)


def bind(run_id: str | None, step_id: str | None = None) -> None:
    """The current task (and what it starts) is about ``run_id`` / ``step_id`` from now on."""
    run_id_var.set(run_id or None)
    step_id_var.set(step_id if step_id and step_id != DISCOVERY_STEP else None)


def tagged(run_id: str, step_id: str, fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """``fn`` with ``run_id``/``step_id`` bound while it runs (a workflow step's body), then restored."""

    async def call(*args: Any) -> T:
        tokens = run_id_var.set(run_id), step_id_var.set(step_id)
        try:
            return await fn(*args)
        finally:
            step_id_var.reset(tokens[1])
            run_id_var.reset(tokens[0])

    return call


class RunContextFilter(logging.Filter):
    """Adds ``run_id`` and ``step_id`` (None when unknown) to every record, unless the call gave them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "run_id", None) is None:
            record.run_id = run_id_var.get()
        if getattr(record, "step_id", None) is None:
            record.step_id = step_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "run_id"?, "step_id"?, "exc"?}``, one object per line."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        for key in ("run_id", "step_id"):
            value = getattr(record, key, None)
            if value:
                obj[key] = value
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False, default=str)


def log_format(environ: dict[str, str] | None = None) -> str:
    """``json`` or ``text``: what ``AGENTCMD_LOG_FORMAT`` asks of a server process."""
    value = (os.environ if environ is None else environ).get(LOG_FORMAT_ENV, "").strip().lower()
    return "json" if value == "json" else "text"


def configure_logging(level: int = logging.INFO, *, text_too: bool = True) -> str:
    """The root handler of a server process (stderr), in the format ``AGENTCMD_LOG_FORMAT`` asks; returns it.

    ``text_too=False`` leaves a text-format process's logging as it was (the app server's). HTTP client
    libraries log each request's URL at INFO, and a URL can hold an event key (``/e/<key>``): they log
    warnings only.
    """
    fmt = log_format()
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if fmt != "json" and not text_too:
        return fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RunContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return fmt


def uvicorn_log_options() -> dict[str, Any]:
    """JSON logs: uvicorn's loggers go through the root handler (its own config would write text)."""
    return {"log_config": None} if log_format() == "json" else {}


class RunLogMiddleware:
    """The app server: an SDK call from the engine binds its run and step ids for everything it logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            run_id = step_id = None
            for name, value in scope.get("headers") or ():
                if name == b"x-run-id":
                    run_id = value.decode("latin-1")[:64]
                elif name == b"x-inngest-step-id":
                    step_id = value.decode("latin-1")[:128]
            if run_id is not None:
                bind(run_id, step_id)
        await self.app(scope, receive, send)
