"""Reading the app API's server-sent events (``GET /api/runs/{id}/live``) from the CLI.

``SseParser`` turns the lines of a ``text/event-stream`` into events (the
WHATWG rules the browser's EventSource follows: ``data`` lines joined,
``id`` remembered across events, comments and keepalives skipped).
``read_events`` opens one stream with httpx through the app client (its
base URL and bearer), resuming after ``Last-Event-ID``, and yields events
until the server ends the stream. Reconnecting is the caller's loop
(``cli/watch.py``): a stream ends on purpose every 300 s, and a dropped
connection resumes from the last id seen, so no event is printed twice or
lost.

An app server older than the live stream answers 404 (no such route):
``NoLiveStream``, and the caller polls the run instead.

Wire format: https://html.spec.whatwg.org/multipage/server-sent-events.html
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

CONNECT_S = 10.0


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None


class NoLiveStream(Exception):
    """The app server has no live route (an agentcmd from before it): follow the run by polling."""


class SseParser:
    """Feed it lines (without their line ending); it returns an event at each blank line that ends one."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        """The last ``id`` the stream gave: where a reconnect resumes (``Last-Event-ID``)."""
        self.retry_ms: int | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the keepalive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return SseEvent(event, "\n".join(data), self.last_id)


def read_events(client: Any, path: str, parser: SseParser, *, read_timeout: float) -> Iterator[SseEvent]:
    """The events of one ``GET path`` stream, from after ``parser.last_id``, until the server ends it
    (keepalive comments too, as events named ``:``).

    ``client`` is an ``AppClient``; an error answer becomes its
    ``AgentcmdError`` (401, 403 ...), a 404 without the API's own error body
    is ``NoLiveStream``. Network errors and read timeouts (``read_timeout``
    seconds without a byte; the server sends a keepalive every 15 s) are
    raised as httpx errors for the caller to reconnect.
    """
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
    if parser.last_id:
        headers["Last-Event-ID"] = parser.last_id
    timeout = httpx.Timeout(CONNECT_S, read=read_timeout)
    http: httpx.Client = client.http
    with http.stream("GET", path, headers=headers, timeout=timeout) as resp:
        if resp.status_code != 200:
            resp.read()
            if resp.status_code == 404 and not _api_error(resp):
                raise NoLiveStream(path)
            client.answer(resp, "GET", path)  # raises the error the status stands for
            raise NoLiveStream(path)  # a 2xx/3xx that is not a stream: treat the server as one without it
        if not resp.headers.get("content-type", "").startswith("text/event-stream"):
            raise NoLiveStream(path)
        for line in resp.iter_lines():
            if line.startswith(":"):
                yield SseEvent(":", line[1:].strip(), parser.last_id)  # a keepalive: the caller can look at its clock
                continue
            event = parser.feed(line)
            if event is not None:
                yield event


def _api_error(resp: httpx.Response) -> bool:
    """The API's own error body (``{"error": ...}``): an unknown run, not a missing route."""
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error" in body
