"""The app server's ``EdgePolicy`` (``agentcmd.httpedge``): its names, body limits and JSON rules.

Names: loopback, the bind host, the SDK's serve origin (``INNGEST_SERVE_ORIGIN``:
the address a real Inngest server or the engine calls the SDK at), and the
configured ones (``--allowed-host`` / ``AGENTCMD_ALLOWED_HOSTS``).

Routes: the SDK endpoint takes the engine's inline run state (16 MiB). In
dev it has no signature, so it takes only ``application/json``, strict
JSON, and calls the SDK can use (``sdkinput``: the SDK answers the others
with 500s); in production the SDK's signature check refuses anything
unsigned first.
The app API's bodies are strict JSON too (``NaN`` would be refused by the
engine only after the app accepted it), and without a bearer (dev on
loopback) it takes only JSON. Logins and the workflow views' forms are small.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agentcmd.httpedge import EdgePolicy, HostPolicy
from agentcmd.httpedge.limits import APP_API_MAX, FORM_MAX, SDK_MAX
from agentcmd.httpedge.middleware import RouteRule
from agentcmd.mode import Mode
from agentcmd.webauth.policy import Need, Route

if TYPE_CHECKING:
    import inngest

    from agentcmd.server.access import AppAuth


def configured_hosts(extra: Sequence[str] = ()) -> list[str]:
    """The ``allowed_hosts`` setting (``AGENTCMD_ALLOWED_HOSTS`` or config.json) plus ``extra`` (``--allowed-host``)."""
    from agentcmd.config import load_settings

    return [load_settings().allowed_hosts, *extra]


def app_edge_policy(auth: AppAuth, host: str, allowed_hosts: Sequence[str] = (),
                    functions: Sequence[inngest.Function[Any]] = ()) -> EdgePolicy:
    """``functions`` are the ones the SDK serves: a dev SDK call must name one of them (``sdkinput``)."""
    from agentcmd.config import load_settings
    from agentcmd.server.access import classify
    from agentcmd.server.sdkinput import sdk_call_check
    from agentcmd.workflows.define import APP_ID

    dev = auth.mode is Mode.DEV

    def ids() -> list[str]:   # the live list: a reload replaces its contents in place
        return [i for fn in functions for i in (fn.get_id(), fn.on_failure_fn_id) if i]

    sdk = RouteRule(SDK_MAX, json_only=True, strict_json=True, check=sdk_call_check(APP_ID, ids)) if dev \
        else RouteRule(SDK_MAX)   # production: the SDK checks the signature before it reads anything
    open_api = RouteRule(APP_API_MAX, json_only=True, strict_json=True)
    keyed_api = RouteRule(APP_API_MAX, strict_json=True)
    form = RouteRule(FORM_MAX)
    # Webhooks come from other sites by nature (their HMAC is the credential): any site, their own body limit.
    webhook = RouteRule(load_settings().webhooks.max_body_bytes, any_site=True)

    def rule(method: str, path: str) -> RouteRule:
        route = classify(method, path)
        if route is Route.SDK:
            return sdk
        if route is Route.WEBHOOK:
            return webhook
        if route in (Route.API_READ, Route.API_WRITE):
            return keyed_api if auth.need_for(route) is Need.BEARER else open_api
        return form

    hosts = HostPolicy.build(host, configured_hosts(allowed_hosts),
                             known_urls=[os.environ.get("INNGEST_SERVE_ORIGIN")])
    return EdgePolicy(hosts=hosts, rule=rule, server="app server")
