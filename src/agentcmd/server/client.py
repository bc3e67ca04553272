"""The CLI's client of the app API (``agentcmd workflows|runs|send``).

The app is found at ``http://<settings.host>:<settings.port>`` (``PORT`` /
``AGENTCMD_PORT``; a wildcard host means loopback). Its JSON errors
``{"error", "code", "hint"}`` become ``AgentcmdError``s with the CLI exit
code of their kind: bad input exits 2, everything else 1.
"""

from __future__ import annotations

from typing import Any

import httpx

from agentcmd.errors import AgentcmdError, AuthError, InputError, NotFoundError, UnavailableError

_BY_STATUS: dict[int, type[AgentcmdError]] = {400: InputError, 401: AuthError, 403: AuthError,
                                              404: NotFoundError, 422: InputError, 503: UnavailableError}


def app_url(port: int | None = None) -> str:
    from agentcmd.config import load_settings

    settings = load_settings()
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port or settings.port}"


class AppClient:
    """Synchronous: the CLI makes a handful of calls per command."""

    def __init__(self, base_url: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = (base_url or app_url()).rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UnavailableError(f"the app server is not reachable at {self.base_url} ({type(exc).__name__})",
                                   "start it with 'agentcmd dev' (or 'agentcmd start'), or set PORT to its port",
                                   code="app_unreachable") from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400:
            if isinstance(body, dict) and "error" in body:
                kind = _BY_STATUS.get(resp.status_code, AgentcmdError)
                raise kind(str(body["error"]), str(body.get("hint") or "") or None,
                           code=str(body.get("code") or kind.code), details=body.get("details"))
            raise AgentcmdError(f"the app server answered {resp.status_code} to {method} {path}",
                                f"is {self.base_url} an agentcmd app server?", code="app_error")
        return body

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)
