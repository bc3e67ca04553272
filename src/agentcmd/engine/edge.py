"""The engine's ``EdgePolicy`` (``agentcmd.httpedge``): its names, its routes' body limits and JSON rules.

In dev mode nothing on the engine has a key, so every state change on its
API (``/e/*``, ``/fn/register``, ``/v0``, ``/v1``) must be JSON; in
production those routes need the event key or the bearer, which no
browser on another site has, so only the cross-site and ``Host`` rules
apply. The dashboard (everything else) takes small forms with a CSRF token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentcmd.httpedge import EdgePolicy, HostPolicy
from agentcmd.httpedge.limits import EVENTS_REQUEST_MAX, FORM_MAX, JSON_API_MAX, SDK_MAX, SYNC_MAX
from agentcmd.httpedge.middleware import RouteRule

if TYPE_CHECKING:
    from agentcmd.engine.config import EngineConfig


def engine_edge_policy(config: EngineConfig) -> EdgePolicy:
    keyless = not config.production
    events = RouteRule(EVENTS_REQUEST_MAX, json_only=keyless)
    sync = RouteRule(SYNC_MAX, json_only=keyless)
    api = RouteRule(JSON_API_MAX, json_only=keyless)
    form = RouteRule(FORM_MAX)
    connect = RouteRule(SDK_MAX)       # protobuf bodies (engine/api/connect.py); cross-site rules still apply

    def rule(method: str, path: str) -> RouteRule:
        if path.startswith("/e/"):
            return events
        if path == "/fn/register":
            return sync
        if path.startswith("/v0/connect/"):
            return connect
        if path.startswith(("/v0/", "/v1/")) or path == "/health":
            return api
        return form

    hosts = HostPolicy.build(config.host, config.allowed_hosts)
    return EdgePolicy(hosts=hosts, rule=rule, server="engine")
