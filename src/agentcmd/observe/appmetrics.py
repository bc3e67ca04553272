"""The app server's Prometheus metrics (``GET /metrics`` on the app server; docs/running.md "Metrics").

Agent steps run in the app server, so their tokens and cost are counted
here: every agent attempt the cost ledger records (``workflows/costs.py``
``record_usage_sync``: completed, failed, cancelled and over-budget ones,
since they all cost money) adds to the counters, labelled by workflow,
agent and model. The ledger files stay the record of what was spent; these
counters are the same numbers since the process started, for a scraper.

One registry per process (``APP_METRICS``), not Prometheus' global one:
an app server is one process, and the engine's registries must not see it.
Who may scrape is ``scrape_refusal``: open unless the app server is locked
(bound beyond loopback in production, or ``--dashboard-auth``); then the
API's bearer (the signing key), like ``/api``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from agentcmd.server.access import AppAuth

METRICS_PATH = "/metrics"
SCRAPE_HINT = ("send 'Authorization: Bearer <signing key>' (the raw key or the SDK's hashed form), "
               "e.g. Prometheus' authorization.credentials_file")
TOKEN_KINDS = ("input", "output", "cached")
AGENT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value) and value >= 0 else 0.0


class AppMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        labels = ["workflow", "agent", "model"]
        self.tokens = Counter("agentcmd_agent_tokens", "Agent tokens by workflow, agent, model and kind "
                              "(input counts every input token; cached is the part read from the cache)",
                              [*labels, "kind"], registry=r)
        self.cost = Counter("agentcmd_agent_cost_usd", "Agent cost in US dollars by workflow, agent and model",
                            labels, registry=r)
        self.attempts = Counter("agentcmd_agent_attempts", "Agent attempts by workflow, agent and status "
                                "(completed, failed, cancelled, interrupted, budget_exceeded)",
                                ["workflow", "agent", "status"], registry=r)
        self.duration = Histogram("agentcmd_agent_duration_seconds", "Agent attempts' wall time by workflow and agent",
                                  ["workflow", "agent"], buckets=AGENT_BUCKETS, registry=r)

    def record_usage(self, entry: Mapping[str, Any]) -> None:
        """One ledger entry (``costs.record_usage_sync``'s): add its tokens, cost and attempt."""
        workflow, agent = str(entry.get("workflow") or ""), str(entry.get("agent") or "")
        model = str(entry.get("model") or "")
        for kind in TOKEN_KINDS:
            self.tokens.labels(workflow, agent, model, kind).inc(_number(entry.get(f"{kind}_tokens")))
        self.cost.labels(workflow, agent, model).inc(_number(entry.get("cost_usd")))
        self.attempts.labels(workflow, agent, str(entry.get("status") or "unknown")).inc()
        self.duration.labels(workflow, agent).observe(_number(entry.get("duration_s")))

    def render(self) -> bytes:
        return generate_latest(self.registry)


APP_METRICS = AppMetrics()


def scrape_refusal(auth: AppAuth, request: Request) -> Response | None:
    """None if ``request`` may read ``/metrics``, else the 401 to send (the API's bearer is missing or wrong)."""
    if not auth.locked or auth.bearer_ok(request.headers.get("authorization")):
        return None
    return JSONResponse({"error": "missing or wrong bearer token: beyond loopback /metrics needs the API's bearer",
                         "code": "unauthorized", "hint": SCRAPE_HINT}, status_code=401,
                        headers={"Cache-Control": "no-store", "WWW-Authenticate": 'Bearer realm="agentcmd"'})


def metrics_response() -> Response:
    """``GET /metrics`` on the app server (``scrape_refusal`` ran first, in ``ProtectMiddleware``)."""
    return Response(APP_METRICS.render(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
