"""The app server's client of the engine's REST API (docs/architecture.md).

The app reads runs from the engine, so ``/api/runs`` lists what the engine
persisted, in any engine (ours, ``inngest start``...). Which URL and which
bearer: ``agentcmd/endpoint.py`` (the rule the CLI follows too); in
production every call carries the SDK-hashed signing key as its bearer.
"""

from __future__ import annotations

from typing import Any

import httpx

from agentcmd.endpoint import EngineEndpoint, engine_url, resolve_engine_endpoint
from agentcmd.errors import AgentcmdError, AuthError, NotFoundError, ProtocolError, UnavailableError


class EngineConflictError(AgentcmdError):
    """The engine refused a command in the run's current state (409), e.g. resuming a run that did not fail."""

    code = "engine_conflict"
    exit_code = 1
    http_status = 409
    fix_hint = "read the engine's message: the run is not in a state that allows this command"

    @classmethod
    def from_response(cls, resp: httpx.Response, method: str, path: str) -> EngineConflictError:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        return cls(str(body.get("error") or f"the engine refused {method} {path} (409)"),
                   str(body.get("hint") or "") or None)


class EngineRestClient:
    """The app server's async client of the engine's ``/v1`` routes; errors become ``AgentcmdError``s."""

    def __init__(self, base_url: str | None = None, signing_key: str | None = None,
                 timeout: float = 10.0) -> None:
        self._endpoint = EngineEndpoint((base_url or engine_url()).rstrip("/"), signing_key)
        self.base_url = self._endpoint.url
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_env(cls) -> EngineRestClient:
        endpoint = resolve_engine_endpoint()
        return cls(endpoint.url, endpoint.signing_key)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            authorization = self._endpoint.authorization
            headers = {"Authorization": authorization} if authorization else {}
            self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = await self._http().request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UnavailableError(f"the engine is not reachable at {self.base_url} ({type(exc).__name__})",
                                   "start it with 'agentcmd dev' or 'agentcmd start', "
                                   "or point INNGEST_BASE_URL at it") from None
        if resp.status_code in (401, 403):
            raise AuthError(f"the engine at {self.base_url} refused the app's credentials ({resp.status_code})",
                            "give the app server the engine's signing key (INNGEST_SIGNING_KEY)")
        if resp.status_code == 404:
            raise NotFoundError(f"not found on the engine: {path}", "check the id ('agentcmd runs list')")
        if resp.status_code == 409:
            raise EngineConflictError.from_response(resp, method, path)
        if resp.status_code >= 400:
            raise ProtocolError(f"the engine answered {resp.status_code} to {method} {path}: {resp.text[:300]}",
                                "see the engine's log")
        try:
            return resp.json()
        except ValueError:
            raise ProtocolError(f"the engine answered non-JSON to {method} {path}",
                                "check INNGEST_BASE_URL points at the engine") from None

    async def list_runs(self, *, function_id: str | None = None, status: str | None = None,
                        limit: int = 20, cursor: str | None = None,
                        ended_after: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        params: dict[str, Any] = {"limit": limit}
        if ended_after:
            params["ended_after"] = ended_after   # runs that ended after it (agentcmd's engine; notifications)
        if function_id:
            params["function_id"] = function_id
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        try:
            body = await self._request("GET", "/v1/runs", params=params)
        except NotFoundError:
            raise UnavailableError(f"the engine at {self.base_url} cannot list runs (no GET /v1/runs)",
                                   "listing runs needs agentcmd's engine; 'agentcmd runs show RUN_ID' works "
                                   "with any engine") from None
        runs = [r for r in body.get("data") or [] if isinstance(r, dict)]
        return runs, (body.get("metadata") or {}).get("next_cursor")

    async def get_run(self, run_id: str) -> dict[str, Any]:
        body = await self._request("GET", f"/v1/runs/{run_id}")
        run: dict[str, Any] = body.get("data") or {}
        return run

    async def run_steps(self, run_id: str) -> list[dict[str, Any]]:
        body = await self._request("GET", f"/v1/runs/{run_id}/steps")
        return [s for s in body.get("data") or [] if isinstance(s, dict)]

    async def event_runs(self, event_id: str) -> list[dict[str, Any]]:
        body = await self._request("GET", f"/v1/events/{event_id}/runs")
        return [r for r in body.get("data") or [] if isinstance(r, dict)]

    async def list_functions(self) -> list[dict[str, Any]]:
        """The functions the engine serves (``GET /v1/functions``); NotFoundError on engines without it."""
        body = await self._request("GET", "/v1/functions")
        return [f for f in body.get("data") or [] if isinstance(f, dict)]

    async def cancel_run(self, run_id: str) -> dict[str, Any]:
        body = await self._request("DELETE", f"/v1/runs/{run_id}")
        run: dict[str, Any] = body.get("data") or {}
        return run

    async def resume_run(self, run_id: str, data: dict[str, Any] | None) -> dict[str, Any]:
        """``POST /v1/runs/{id}/resume`` -> ``{"run_id", "resumed_from", "kept_steps"}`` (409: EngineConflictError)."""
        body = await self._request("POST", f"/v1/runs/{run_id}/resume", json={} if data is None else {"data": data})
        return dict(body.get("data") or {})

    async def get_event(self, event_id: str) -> dict[str, Any]:
        body = await self._request("GET", f"/v1/events/{event_id}")
        event: dict[str, Any] = body.get("data") or {}
        return event

    async def run_status(self, run_id: str) -> str | None:
        """For the cancel watcher of running commands; None when the engine cannot say."""
        try:
            status = (await self.get_run(run_id)).get("status")
        except AgentcmdError:
            return None
        return str(status) if status else None
