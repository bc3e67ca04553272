"""Keys from the supervisor to its children through an inherited pipe, never the environment.

A process's initial environment stays readable for its whole life in
``/proc/<pid>/environ`` by every process of the same user, and workflow
steps (agent CLIs, shell commands) run as that user. Keys exported to the
app server or the engine would therefore be one ``cat`` away from any step.
So the supervisor writes them, as one JSON object, into a fresh pipe for
each child it starts, and tells the child only the descriptor number
(``AGENTCMD_SECRETS_FD``). The child reads the pipe once at start
(``handed_keys``), closes it, and passes the keys to what needs them as
arguments (``inngest.Inngest(signing_key=..., event_key=...)``, the
engine's config): they live in its memory, not in its environment.

A process started without the variable (by hand, by a test, by another
supervisor) falls back to the ordinary environment variables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from agentcmd.errors import ConfigError

SECRETS_FD_ENV = "AGENTCMD_SECRETS_FD"
KEY_VARS = ("INNGEST_EVENT_KEY", "INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK")
_MAX_BYTES = 64 * 1024  # a pipe's buffer: the supervisor's write never blocks

_handed: dict[str, str] | None = None
_FIX = (f"{SECRETS_FD_ENV} is set by 'agentcmd start'/'agentcmd dev' for their children only; unset it when "
        "starting the app server or the engine yourself (they then read INNGEST_SIGNING_KEY/INNGEST_EVENT_KEY "
        "or config.json)")


class HandoverError(ConfigError):
    """The descriptor named by ``AGENTCMD_SECRETS_FD`` could not be read as the supervisor's keys."""

    code = "key_handover_failed"
    fix_hint = ("unset AGENTCMD_SECRETS_FD when starting the app server or the engine yourself: only "
                "'agentcmd start'/'agentcmd dev' set it, for their children")


def open_handover(secrets: Mapping[str, str]) -> int:
    """A pipe's read end holding ``secrets`` (the write end is closed); the caller passes it on and closes it.

    The descriptor is inheritable only once given to ``Popen(pass_fds=...)``.
    """
    data = json.dumps(dict(secrets)).encode()
    if len(data) >= _MAX_BYTES:
        raise ValueError("the keys to hand over do not fit in a pipe's buffer")
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, data)
    finally:
        os.close(write_fd)
    return read_fd


def _read_fd(fd: int) -> dict[str, str]:
    chunks = []
    try:
        while chunk := os.read(fd, _MAX_BYTES):
            chunks.append(chunk)
    finally:
        os.close(fd)
    value = json.loads(b"".join(chunks) or b"{}")
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise HandoverError("the keys handed over are not a JSON object of strings", _FIX)
    return value


def handed_keys() -> dict[str, str]:
    """The keys handed over by the supervisor, read (and the pipe closed) on the first call."""
    global _handed
    if _handed is None:
        raw = os.environ.pop(SECRETS_FD_ENV, "").strip()
        if not raw:
            _handed = {}
        else:
            try:
                _handed = _read_fd(int(raw))
            except (ValueError, OSError) as exc:
                raise HandoverError(f"cannot read the keys from descriptor {SECRETS_FD_ENV}={raw}: {exc}",
                                    _FIX) from exc
    return dict(_handed)


def key(name: str) -> str | None:
    """Key ``name`` (an ``INNGEST_*`` variable's name): handed over, else from the environment."""
    return handed_keys().get(name) or os.environ.get(name) or None


def handover_env(env: Mapping[str, str], secrets: Mapping[str, str]) -> tuple[dict[str, str], tuple[int, ...]]:
    """A child's environment and the descriptors to pass it: a fresh pipe of ``secrets`` for each start."""
    out = {k: v for k, v in env.items() if k != SECRETS_FD_ENV}
    if not secrets:
        return out, ()
    fd = open_handover(secrets)
    out[SECRETS_FD_ENV] = str(fd)
    return out, (fd,)
