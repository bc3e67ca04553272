"""The ``webhooks`` setting: which webhook routes of the app server exist, and their secrets.

A source without a secret has no route (404): an unsigned webhook would
let anyone who can reach the app server start runs. Secrets are
``SecretStr`` (reprs, ``agentcmd config --show`` and logs never show them)
and live in the config file (0600) or the environment
(``AGENTCMD_WEBHOOKS__GITHUB__SECRET``...). docs/settings.md and
docs/workflows.md ("Webhooks") describe them.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator

KIB = 1024
MIB = 1024 * KIB
MAX_BODY_DEFAULT = 1 * MIB
# The body becomes one event's data; the engine takes events up to 3 MiB, and JSON re-encoding may grow a body.
MAX_BODY_CEILING = 2 * MIB
MIN_SECRET_CHARS = 16
DEFAULT_HEADER = "X-Signature-256"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,100}$")
SECRET_FIX = "generate one with 'openssl rand -hex 32' and give the same value to the sender"


def _secret(value: Any, where: str) -> SecretStr | None:
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        raise ValueError(f"{where} must be a string")
    if len(raw.strip()) < MIN_SECRET_CHARS:
        # The message never repeats the value: it is a secret even when too short.
        raise ValueError(f"{where} is shorter than {MIN_SECRET_CHARS} characters; {SECRET_FIX}")
    return SecretStr(raw.strip())


class WebhookSource(BaseModel):
    """GitHub or Linear: the shared secret the sender signs with (none: the route answers 404)."""

    model_config = {"extra": "forbid"}

    secret: SecretStr | None = None

    @field_validator("secret", mode="before")
    @classmethod
    def _check_secret(cls, v: Any) -> SecretStr | None:
        return _secret(v, "the webhook secret")


class GenericWebhook(BaseModel):
    """``POST /api/webhooks/generic/<name>``: HMAC-SHA256 of the raw body, hex, in ``header``."""

    model_config = {"extra": "forbid"}

    secret: SecretStr
    header: str = DEFAULT_HEADER
    delivery_header: str | None = None

    @field_validator("secret", mode="before")
    @classmethod
    def _check_secret(cls, v: Any) -> SecretStr:
        secret = _secret(v, "the webhook secret")
        if secret is None:
            raise ValueError(f"a generic webhook needs a secret; {SECRET_FIX}")
        return secret

    @field_validator("header", "delivery_header")
    @classmethod
    def _check_header(cls, v: str | None) -> str | None:
        if v is not None and not _HEADER.match(v):
            raise ValueError(f"{v!r} is not an HTTP header name (letters, digits and '-')")
        return v


class WebhookSettings(BaseModel):
    """Every webhook source of the app server (docs/workflows.md, "Webhooks")."""

    model_config = {"extra": "forbid"}

    github: WebhookSource = Field(default_factory=WebhookSource)
    linear: WebhookSource = Field(default_factory=WebhookSource)
    generic: dict[str, GenericWebhook] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=MAX_BODY_DEFAULT, ge=KIB, le=MAX_BODY_CEILING)

    @field_validator("generic")
    @classmethod
    def _check_names(cls, v: dict[str, GenericWebhook]) -> dict[str, GenericWebhook]:
        for name in v:
            if not _NAME.match(name):
                raise ValueError(f"generic webhook name {name!r} must be lower-case letters, digits, '_' and '-'")
        return v
