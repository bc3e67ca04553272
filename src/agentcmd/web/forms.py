"""Reading what a browser posts: an urlencoded form, and where to go next.

Both UIs' forms are plain HTML (they work without JavaScript) and small, so
the body is parsed here with the standard library (no python-multipart).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

from agentcmd.errors import InputError

MAX_FORM_BYTES = 256 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body as a dict (last value wins); too large a body is an ``InputError``."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InputError(f"the form is too large ({len(body)} bytes)", f"send at most {MAX_FORM_BYTES} bytes")
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def safe_next(value: str | None) -> str:
    """Only same-site relative paths: never redirect a fresh login to another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def accepts_json(request: Request) -> bool:
    """A post from a script (``Accept: application/json``) gets JSON back instead of a redirect."""
    return "application/json" in request.headers.get("accept", "")
