"""How one notice reaches one target: the JSON webhook, the Slack incoming webhook, the desktop.

``send`` makes one attempt and says how it went (``Outcome``); retries are
``delivery.py``'s. Nothing here may let a target URL out: errors are
worded from the status code or the exception's type, and anything else
goes through ``redact`` (the URL and its path become the host).

The generic webhook body (docs/workflows.md, "Notifications")::

    {"event": "failed", "run_id": "01J...", "workflow_id": "fix-tests", "status": "Failed",
     "url": "http://127.0.0.1:4100/runs/01J...", "at": "2026-12-04T15:00:00.000Z",
     "detail": {"error": "..."}, "text": "fix-tests run 01J... failed"}

Slack gets ``{"text": "<url|fix-tests run 01J...> failed: ..."}``. The
desktop gets ``notify-send TITLE BODY`` on Linux or ``osascript`` on macOS,
each as an argument vector (no shell, no script built from the text); where
neither exists the target is ``unavailable``, said once in the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import sys
from typing import Any

import httpx

from agentcmd.config.notifications import NotifyTarget

log = logging.getLogger("agentcmd.notify")

USER_AGENT = "agentcmd-notify/1"
_said_unavailable = False


@dataclasses.dataclass(frozen=True)
class Notice:
    """One moment of one run, as every target is told of it."""

    event: str
    run_id: str
    workflow_id: str | None
    status: str | None
    url: str
    at: str
    detail: dict[str, Any]

    @property
    def question(self) -> str:
        return str(self.detail.get("question") or "")

    def summary(self) -> str:
        """``fix-tests run 01J... failed: <error>`` (one line, at most ~300 characters)."""
        what = {"finished": "finished", "failed": "failed", "cancelled": "was cancelled",
                "waiting": "waits for a human"}[self.event]
        extra = self.detail.get("message") if self.event == "waiting" else self.detail.get("error")
        text = f"{self.workflow_id or 'workflow'} run {self.run_id} {what}"
        if extra:
            text += f": {' '.join(str(extra).split())[:240]}"
        return text

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Notice | None:
        """The notice an entry kept; None for anything else (an older or hand-edited file)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})
        except (KeyError, TypeError):
            return None

    def body(self) -> dict[str, Any]:
        return {"event": self.event, "run_id": self.run_id, "workflow_id": self.workflow_id, "status": self.status,
                "url": self.url, "at": self.at, "detail": self.detail, "text": self.summary()}


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str | None = None   # redacted, short
    final: bool = False        # no point in trying again (e.g. no desktop here)
    status: str | None = None  # "unavailable" for a desktop that cannot show notifications


def redact(text: str, secrets: list[str], host: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, f"{host}/<redacted>")
    return text


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(notice: Notice) -> dict[str, Any]:
    head = f"{notice.workflow_id or 'workflow'} run {notice.run_id}"
    rest = _slack_escape(notice.summary()[len(head):])
    return {"text": f"<{notice.url}|{_slack_escape(head)}>{rest}"}


async def _post(client: httpx.AsyncClient, target: NotifyTarget, body: dict[str, Any], timeout: float,
                secrets: list[str]) -> Outcome:
    assert target.url is not None
    try:
        resp = await client.post(target.url.get_secret_value(), json=body, timeout=timeout,
                                 headers={"User-Agent": USER_AGENT})
    except httpx.TimeoutException:
        return Outcome(False, f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        detail = redact(str(exc), secrets, target.destination)[:200]
        return Outcome(False, f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)
    if 200 <= resp.status_code < 300:
        return Outcome(True)
    # A 4xx other than 408/429 will not get better by asking again (a revoked Slack hook answers 404/410).
    final = 400 <= resp.status_code < 500 and resp.status_code not in (408, 429)
    return Outcome(False, f"HTTP {resp.status_code}", final=final)


def desktop_argv(title: str, body: str) -> list[str] | None:
    """The command that shows a notification here, as an argument vector; None where there is none."""
    if sys.platform == "darwin":
        osascript = shutil.which("osascript")
        if osascript:   # the text is passed as arguments of the script, never pasted into it
            return [osascript, "-e", "on run argv", "-e",
                    "display notification (item 2 of argv) with title (item 1 of argv)", "-e", "end run",
                    title, body]
        return None
    notify_send = shutil.which("notify-send")
    return [notify_send, "--app-name=agentcmd", "--", title, body] if notify_send else None


async def _desktop(notice: Notice, timeout: float) -> Outcome:
    global _said_unavailable
    argv = desktop_argv(f"agentcmd: {notice.workflow_id or 'run'} {notice.event}", notice.summary() + "\n" + notice.url)
    if argv is None:
        if not _said_unavailable:
            _said_unavailable = True
            log.warning("desktop notifications are unavailable here (no notify-send or osascript): "
                        "desktop targets are skipped")
        return Outcome(False, "no desktop notifications here (notify-send or osascript not found)", final=True,
                       status="unavailable")
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        return Outcome(False, f"{argv[0]} could not start: {exc.strerror or type(exc).__name__}")
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return Outcome(False, f"{argv[0]} did not finish within {timeout:g} s")
    if proc.returncode != 0:
        return Outcome(False, f"exit {proc.returncode}: {err.decode(errors='replace').strip()[:200]}")
    return Outcome(True)


async def send(client: httpx.AsyncClient, target: NotifyTarget, notice: Notice, timeout: float,
               secrets: list[str]) -> Outcome:
    """One attempt at telling ``target`` of ``notice``."""
    if target.type == "desktop":
        return await _desktop(notice, timeout)
    body = slack_body(notice) if target.type == "slack" else notice.body()
    return await _post(client, target, body, timeout, secrets)
