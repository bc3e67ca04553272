"""Rendering helpers both web UIs use: Jinja environment, filters, fingerprints, headers.

A page and its JSON twin are built from one ``data`` dict: the template gets
it (plus the chrome, ``site.py``), the twin gets it as JSON. So a twin can
never show something the page does not, and the other way round.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response

HERE = Path(__file__).parent
MAX_PRE_CHARS = 20_000

# The UIs need no third-party content, no framing and no inline script.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def fmt_duration(ms: int | None) -> str:
    """850 ms, 12.3 s, 4 m 05 s, 1 h 02 m: short and unambiguous."""
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m} m {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} m"


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return "–"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def pretty_json(value: Any) -> str:
    """Indented JSON for a <pre>, cut at MAX_PRE_CHARS with a note (the JSON twin has it all)."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > MAX_PRE_CHARS:
        return text[:MAX_PRE_CHARS] + f"\n… cut at {MAX_PRE_CHARS} characters; the JSON twin has the rest"
    return text


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def version_of(*parts: Any) -> str:
    """A short fingerprint of what a page shows; live updates re-render when it changes."""
    return hashlib.sha1(json.dumps(list(parts), default=_plain).encode()).hexdigest()[:12]


def make_env(templates: Path, filters: dict[str, Callable[..., Any]] | None = None,
             globals_: dict[str, Any] | None = None) -> jinja2.Environment:
    """A UI's templates first, then the shared ones (``layout.html``, ``login.html``, ``error.html``, macros)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(templates), str(HERE / "templates")]),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(duration=fmt_duration, time=fmt_time, iso=iso_time, pretty=pretty_json)
    env.filters.update(filters or {})
    env.globals.update(globals_ or {})
    return env


def secure(response: Response, started: float | None = None) -> Response:
    """The security headers, and ``Server-Timing`` when the handler noted when it ``started``."""
    response.headers.update(SECURITY_HEADERS)
    if started is not None:
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
    return response


def json_suffix(request: Request) -> bool:
    """True for the twin's own address (``/runs.json``, ``/runs/{id}.json``): one handler serves both."""
    return request.url.path.endswith(".json")


def wants_json(request: Request) -> bool:
    """The JSON twin: asked for by its address (``.json``) or ``?format=json``."""
    return json_suffix(request) or request.query_params.get("format") == "json"
