"""The environment the app process (the SDK) gets, per mode.

The official SDK decides dev vs production ("cloud") from ``INNGEST_DEV``
alone, and in production sends syncs to Inngest Cloud unless
``INNGEST_BASE_URL`` points elsewhere. So production must *remove*
``INNGEST_DEV`` (a stray ``INNGEST_DEV=1`` from a user's shell would
silently turn auth off) and set the base URL; dev must set
``INNGEST_DEV`` and must not export keys (the SDK hex-decodes a
configured signing key even in dev, see the wire reference §2.2).

``serve_url`` (the app's configured SDK URL) sets ``INNGEST_SERVE_ORIGIN``
and ``INNGEST_SERVE_PATH``: the SDK then registers that URL, never one
built from a request's ``Host`` header. The supervisor hands the keys to
its children by pipe (``agentcmd.handover``) and passes none here.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from agentcmd.mode import Mode

_URL_VARS = ("INNGEST_BASE_URL", "INNGEST_API_BASE_URL", "INNGEST_EVENT_API_BASE_URL")
_SERVE_VARS = ("INNGEST_SERVE_ORIGIN", "INNGEST_SERVE_PATH")
_KEY_VARS = ("INNGEST_EVENT_KEY", "INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK")


def inngest_env(
    mode: Mode,
    engine_url: str,
    *,
    event_key: str | None = None,
    signing_key: str | None = None,
    base: Mapping[str, str] | None = None,
    serve_url: str | None = None,
) -> dict[str, str]:
    """Return a copy of ``base`` adjusted for ``mode``; ``base`` is not modified."""
    env = dict(base or {})
    url = engine_url.rstrip("/")
    for var in (*_URL_VARS, *_SERVE_VARS):
        env.pop(var, None)
    if serve_url:
        parts = urlsplit(serve_url)
        env["INNGEST_SERVE_ORIGIN"] = f"{parts.scheme}://{parts.netloc}"
        env["INNGEST_SERVE_PATH"] = parts.path
    if mode is Mode.PRODUCTION:
        env.pop("INNGEST_DEV", None)
        env["INNGEST_BASE_URL"] = url
        for var in _KEY_VARS:
            env.pop(var, None)
        if event_key:
            env["INNGEST_EVENT_KEY"] = event_key
        if signing_key:
            env["INNGEST_SIGNING_KEY"] = signing_key
        env["NODE_ENV"] = "production"
    else:
        env["INNGEST_DEV"] = "1"
        env["INNGEST_BASE_URL"] = url
        for var in _KEY_VARS:
            env.pop(var, None)
        env["NODE_ENV"] = "development"
    return env
