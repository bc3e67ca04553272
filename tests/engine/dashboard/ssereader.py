"""``SseReader``: a real HTTP client of a server-sent events stream, read in a thread for tests to poll.

``SseReader(url, cookies=...)`` connects at once (``status`` and ``headers``
are set when it returns) and appends each message, as ``(event, data)``,
to ``messages`` as it arrives; ``ended`` is set when the server closes the
stream. Tests wait on them with ``tests.polling.wait_for``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx


class SseReader:
    def __init__(self, url: str, *, cookies: httpx.Cookies | None = None, timeout: float = 30) -> None:
        self.url = url
        self.messages: list[tuple[str, Any]] = []
        self.arrived: list[float] = []
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self._client = httpx.Client(cookies=cookies, timeout=httpx.Timeout(timeout, read=None))
        self._response = self._client.send(self._client.build_request("GET", url), stream=True)
        self.status = self._response.status_code
        self.headers = self._response.headers
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event, data = "message", []
        try:
            for line in self._response.iter_lines():
                if line == "":
                    if data:
                        self.messages.append((event, json.loads("\n".join(data))))
                        self.arrived.append(time.monotonic())
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
        except (httpx.HTTPError, ValueError) as exc:
            self.error = exc
        finally:
            self.ended.set()

    def events(self, name: str) -> list[Any]:
        return [data for event, data in list(self.messages) if event == name]

    def close(self) -> None:
        self._response.close()
        self._client.close()
        self._thread.join(5)
