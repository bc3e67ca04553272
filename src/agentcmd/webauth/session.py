"""Signed session cookies and the CSRF tokens bound to them.

No server-side session table: a cookie is ``<sid>.<expires>.<hmac>``, signed
with a secret derived from the dashboard token. So sessions survive an
engine restart, and rotating the token (``agentcmd install --rotate-keys``)
invalidates every session at once. The cookie holds no key material: the
HMAC cannot be turned back into the token. The only server-side state is
the list of logged-out session ids (``revocation.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

SESSION_COOKIE = "agentcmd_session"
CSRF_COOKIE = "agentcmd_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_MAX_AGE_S = 12 * 3600


def derive_secret(token: str | None) -> bytes:
    """The signing secret for cookies: from the dashboard token, or random for this process."""
    if not token:
        return secrets.token_bytes(32)
    return hmac.new(token.encode(), b"agentcmd dashboard session v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class Session:
    sid: str
    expires_at: int


class SessionSigner:
    """Issue and verify session cookie values; the clock is injected for tests."""

    def __init__(self, secret: bytes, max_age_s: int = SESSION_MAX_AGE_S,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.max_age_s = max_age_s
        self._clock = clock

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> tuple[str, Session]:
        session = Session(secrets.token_urlsafe(18), int(self._clock()) + self.max_age_s)
        payload = f"{session.sid}.{session.expires_at}"
        return f"{payload}.{self._sign(payload)}", session

    def verify(self, value: str | None) -> Session | None:
        """The session in a cookie value, or None if absent, tampered with or expired."""
        if not value or value.count(".") != 2:
            return None
        sid, expires, sig = value.split(".")
        if not hmac.compare_digest(sig, self._sign(f"{sid}.{expires}")):
            return None
        try:
            expires_at = int(expires)
        except ValueError:
            return None
        if expires_at <= self._clock():
            return None
        return Session(sid, expires_at)

    def csrf_token(self, binding: str) -> str:
        """The CSRF token for a browser, bound to its session id (or its CSRF cookie nonce)."""
        return hmac.new(self._secret, f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, binding: str | None, submitted: str | None) -> bool:
        if not binding or not submitted:
            return False
        return hmac.compare_digest(self.csrf_token(binding), submitted)


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison of a submitted dashboard token with the configured one."""
    return hmac.compare_digest(given.strip().encode(), expected.encode())
