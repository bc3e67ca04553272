"""The CLI's clients: the app API (``agentcmd workflows|runs|send``, ``AppClient``) and the engine's
REST API (``agentcmd functions``, ``CliEngineClient``).

The app is found at ``http://<settings.host>:<settings.port>`` (``PORT`` /
``AGENTCMD_PORT``; a wildcard host means loopback). Its JSON errors
``{"error", "code", "hint"}`` become ``AgentcmdError``s with the CLI exit
code of their kind: bad input exits 2, everything else 1.

When a signing key is configured (``INNGEST_SIGNING_KEY`` or
``agentcmd install``), every call carries ``Authorization: Bearer`` with the
key's SDK-hashed form, which an app server bound beyond loopback (or run with
``--dashboard-auth``) requires; a loopback app server ignores it. The hash
opens the API but cannot sign SDK requests, so the raw key never leaves.
The engine's URL and bearer follow ``agentcmd/endpoint.py``, the rule the
app server follows too.
"""

from __future__ import annotations

from typing import Any

import httpx

from agentcmd.errors import AgentcmdError, AuthError, InputError, NotFoundError, UnavailableError

_BY_STATUS: dict[int, type[AgentcmdError]] = {400: InputError, 401: AuthError, 403: AuthError,
                                              404: NotFoundError, 422: InputError, 503: UnavailableError}


def app_bearer() -> str | None:
    """The ``Authorization`` value for the app API, or None when no signing key is configured."""
    from agentcmd.config import load_settings
    from agentcmd.signing import hash_signing_key

    key = load_settings().secret("signing_key")
    return f"Bearer {hash_signing_key(key)}" if key else None


def app_url(port: int | None = None) -> str:
    from agentcmd.config import load_settings

    settings = load_settings()
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port or settings.port}"


class AppClient:
    """Synchronous: the CLI makes a handful of calls per command."""

    name = "the app server"
    unreachable_fix = "start it with 'agentcmd dev' (or 'agentcmd start'), or set PORT to its port"

    def __init__(self, base_url: str | None = None, timeout: float = 30.0, authorization: str | None = None) -> None:
        self.base_url = (base_url or app_url()).rstrip("/")
        authorization = authorization or self.default_authorization()
        headers = {"Authorization": authorization} if authorization else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def default_authorization(self) -> str | None:
        """The ``Authorization`` value when the caller gives none."""
        return app_bearer()

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
            raise UnavailableError(f"{self.name} is not reachable at {self.base_url} ({type(exc).__name__})",
                                   self.unreachable_fix, code="app_unreachable") from None
        return self.answer(resp, method, path)

    @property
    def http(self) -> httpx.Client:
        """The underlying client (base URL and bearer set), for streamed reads (``cli/livestream.py``)."""
        return self._http

    def answer(self, resp: httpx.Response, method: str, path: str) -> Any:
        """The JSON body of a read response, or the ``AgentcmdError`` its error status stands for."""
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code == 401 and "Authorization" not in self._http.headers:
            raise AuthError(f"{self.name} at {self.base_url} needs a bearer and no signing key is configured",
                            f"set INNGEST_SIGNING_KEY to the signing key {self.name} runs with (on its "
                            "machine it is in the file 'agentcmd config path' prints)", code="unauthorized")
        if resp.status_code >= 400:
            if isinstance(body, dict) and "error" in body:
                kind = _BY_STATUS.get(resp.status_code, AgentcmdError)
                raise kind(str(body["error"]), str(body.get("hint") or "") or None,
                           code=str(body.get("code") or kind.code), details=body.get("details"))
            raise AgentcmdError(f"{self.name} answered {resp.status_code} to {method} {path}",
                                f"is {self.base_url} {self.name}?", code="app_error")
        return body

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)


class CliEngineClient(AppClient):
    """The CLI's client of the engine's REST API (``/v1/...``), with the app client's errors.

    URL and bearer: ``agentcmd/endpoint.py`` (``base_url`` overrides the URL).
    """

    name = "the engine"
    unreachable_fix = ("start it ('agentcmd dev', 'agentcmd start' or 'agentcmd engine start'), or set "
                       "AGENTCMD_ENGINE_URL (or AGENTCMD_ENGINE_PORT) to where it listens")

    def __init__(self, base_url: str | None = None, timeout: float = 30.0) -> None:
        from agentcmd.endpoint import resolve_engine_endpoint

        self._endpoint = resolve_engine_endpoint(base_url)
        super().__init__(self._endpoint.url, timeout)

    def default_authorization(self) -> str | None:
        return self._endpoint.authorization
