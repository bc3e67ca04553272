"""Where the engine is and which bearer to send it: one rule for the app server and the CLI.

The URL is the first of these that is set (a trailing ``/`` removed):

1. ``INNGEST_BASE_URL``, then ``INNGEST_API_BASE_URL`` (the SDK's variables;
   the supervisor sets the first for the app server it runs);
2. the ``engine_url`` setting (``AGENTCMD_ENGINE_URL``, ``config.json``);
3. ``http://127.0.0.1:<engine_port>`` (``AGENTCMD_ENGINE_PORT``, 8288).

The signing key behind the bearer: none in dev mode (``INNGEST_DEV`` truthy:
a dev engine checks no bearer, and dev needs no keys, so a bad or missing
key in the settings cannot stop a dev app server); otherwise the key the
supervisor handed over (``AGENTCMD_SECRETS_FD``, ``handover.py``), else the
``signing_key`` setting (``INNGEST_SIGNING_KEY``, ``config.json``). It is
sent in the SDK's hashed form, ``Bearer <sha256 hex of the hex-decoded
key>``, which every engine that checks a bearer accepts (ours, and
Inngest's, which the SDK itself calls that way), so the raw key never
leaves the process.

Before these rules were one, the two clients differed: the CLI read neither
``INNGEST_BASE_URL``/``INNGEST_API_BASE_URL`` nor ``INNGEST_DEV`` nor a
handed-over key, and the app server sent the raw key as its bearer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from agentcmd.signing import hash_signing_key

URL_ENV_VARS = ("INNGEST_BASE_URL", "INNGEST_API_BASE_URL")


@dataclass(frozen=True)
class EngineEndpoint:
    """The engine's base URL and the signing key its bearer comes from (None: send no bearer)."""

    url: str
    signing_key: str | None = None

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` header value, or None when there is no key."""
        return f"Bearer {hash_signing_key(self.signing_key)}" if self.signing_key else None


def dev_mode() -> bool:
    """``INNGEST_DEV`` is set to anything but empty, 0 or false (the SDK's rule)."""
    return os.environ.get("INNGEST_DEV", "").strip().lower() not in ("", "0", "false")


def engine_url() -> str:
    """The engine's base URL by the rules above."""
    for var in URL_ENV_VARS:
        if os.environ.get(var):
            return os.environ[var].rstrip("/")
    from agentcmd.config import load_settings

    settings = load_settings()
    if settings.engine_url:
        return settings.engine_url.rstrip("/")
    return f"http://127.0.0.1:{settings.engine_port}"


def engine_signing_key() -> str | None:
    """The key behind the engine bearer by the rules above."""
    if dev_mode():
        return None
    from agentcmd.handover import key

    if handed := key("INNGEST_SIGNING_KEY"):
        return handed
    from agentcmd.config import load_settings

    return load_settings().secret("signing_key")


def resolve_engine_endpoint(url: str | None = None) -> EngineEndpoint:
    """The engine's endpoint: ``url`` if given (a command-line option), else the URL rule; the key rule."""
    return EngineEndpoint((url or engine_url()).rstrip("/"), engine_signing_key())
