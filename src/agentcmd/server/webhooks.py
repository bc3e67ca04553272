"""Webhook routes: GitHub, Linear and generic HMAC deliveries become events on the engine.

    POST /api/webhooks/github            X-Hub-Signature-256, X-GitHub-Event, X-GitHub-Delivery
    POST /api/webhooks/linear            Linear-Signature, Linear-Delivery, webhookTimestamp (ms) in the body
    POST /api/webhooks/generic/{name}    HMAC-SHA256 in the configured header (default X-Signature-256)

These routes are the world's way in, so they carry no login, CSRF token or
bearer (``access.classify`` makes them ``Route.WEBHOOK``, and the edge
lets a cross-site POST through to them alone): the HMAC signature of the
raw body with the configured secret is the only credential, checked
before anything else is read or stored. Answers:

* 404 when the source has no secret configured (an unsigned route would let
  anyone start runs), 401 for a missing or wrong signature (and for a Linear
  delivery older than a minute), 413 over ``webhooks.max_body_bytes`` (the
  edge stops reading there), 400 for a body that is not a JSON object or a
  missing delivery header. None of them stores or sends anything.
* 202 ``{"status": "accepted", "event": NAME, "event_id": ID}``: one event
  is on the engine, ``github/<X-GitHub-Event>``, ``linear/<type>`` or
  ``webhook/<name>``, its data the payload verbatim, its id
  ``<source>-<delivery id>`` (the engine's idempotency).
* 200 ``{"status": "duplicate"}`` for a delivery id seen before
  (``webhookstore``: kept across restarts), 200 ``{"status": "pong"}`` for
  GitHub's ``ping``.
* 503 when the engine cannot take the event; nothing is recorded, so the
  sender's retry goes through.

Secrets are read once when the app starts and never logged; signatures
are not logged either (a valid one is a replayable credential).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

import inngest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from agentcmd.config.webhooks import WebhookSettings
from agentcmd.errors import InputError
from agentcmd.httpedge import jsonbody
from agentcmd.httpedge.limits import describe
from agentcmd.server import webhooksig
from agentcmd.server.webhookstore import Claim, DeliveryStore

log = logging.getLogger("agentcmd.server.webhooks")

PREFIX = "/api/webhooks"

_DELIVERY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
_EVENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter(prefix=PREFIX)


def attach_webhooks(app: FastAPI, data_dir: Path, settings: WebhookSettings) -> None:
    """Mount the routes; the delivery record is opened on the first accepted delivery."""
    app.state.webhooks = Webhooks(settings, data_dir)
    app.include_router(router)


class Webhooks:
    """The settings and the delivery record of one app server."""

    def __init__(self, settings: WebhookSettings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self._store: DeliveryStore | None = None
        self._lock = threading.Lock()

    def store(self) -> DeliveryStore:
        with self._lock:
            if self._store is None:
                self._store = DeliveryStore.under(self.data_dir)
            return self._store


def _refuse(status: int, error: str, code: str, hint: str) -> JSONResponse:
    return JSONResponse({"error": error, "code": code, "hint": hint}, status_code=status, headers=_NO_STORE)


class Refused(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def _state(request: Request) -> Webhooks:
    hooks: Webhooks = request.app.state.webhooks
    return hooks


def _unconfigured(what: str, setting: str, env: str) -> Refused:
    return Refused(_refuse(404, f"no {what} webhook is configured on this app server", "not_found",
                           f"set {setting} in the config file or {env} (docs/workflows.md, 'Webhooks'), "
                           "then restart the app server"))


def _bad_signature(source: str, header: str, request: Request) -> Refused:
    log.warning("refused a %s webhook from %s: missing or wrong %s", source,
                request.client.host if request.client else "?", header)
    return Refused(_refuse(401, f"missing or wrong {header} signature", "unauthorized",
                           f"sign the raw body with HMAC-SHA256 and the secret configured for {source}, "
                           f"hex-encoded, in the {header} header"))


async def _signed_body(request: Request, what: Literal["GitHub", "Linear"], header: str,
                       prefix_required: bool = False) -> bytes:
    """The raw body of a GitHub or Linear delivery whose ``header`` signs it with the configured secret.

    404 when the source (``what``: "GitHub", "Linear") has no secret, 413 over the size limit, 401 for a
    missing or wrong signature."""
    source = what.lower()
    hooks = _state(request)
    secret = (hooks.settings.github if what == "GitHub" else hooks.settings.linear).secret
    if secret is None:
        raise _unconfigured(what, f"webhooks.{source}.secret", f"AGENTCMD_WEBHOOKS__{source.upper()}__SECRET")
    body = await _body(request, hooks.settings.max_body_bytes)
    if not webhooksig.matches(secret.get_secret_value(), body, request.headers.get(header.lower()),
                              prefix_required=prefix_required):
        raise _bad_signature(source, header, request)
    return body


async def _body(request: Request, limit: int) -> bytes:
    """The raw body, reading no more than ``limit`` bytes (the edge counts too; this holds without it)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(_refuse(413, f"the webhook body is larger than this app server takes ({describe(limit)})",
                                  "too_large", "raise webhooks.max_body_bytes (at most 2 MiB) or send less"))
        chunks.append(chunk)
    return b"".join(chunks)


def _payload(request: Request, body: bytes) -> dict[str, Any]:
    """The JSON object of a body (GitHub's form encoding, ``payload=<json>``, too); 400 otherwise."""
    raw = body
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            fields = {}
        if len(fields.get("payload", ())) != 1:
            raise Refused(_refuse(400, "a form-encoded webhook must carry exactly one 'payload' field",
                                  "invalid_input", "send the JSON payload, or set the sender's content type "
                                  "to application/json"))
        raw = fields["payload"][0].encode()
    try:
        value = jsonbody.loads(raw, "webhook body")
    except InputError as err:
        raise Refused(_refuse(400, err.what, "invalid_input", err.fix or "")) from None
    if not isinstance(value, dict):
        raise Refused(_refuse(400, "the webhook body must be a JSON object", "invalid_input",
                              "send the payload as a JSON object"))
    return value


def _header(request: Request, name: str, what: str) -> str:
    value = request.headers.get(name, "").strip()
    if not _DELIVERY.match(value):
        problem = "is missing" if not value else "is not a usable delivery id"
        raise Refused(_refuse(400, f"the {name} header {problem}", "invalid_input",
                              f"send {what} in {name} (letters, digits, '.', '_', ':' and '-', at most 200)"))
    return value


async def _dispatch(request: Request, source: str, delivery: str, name: str, event_id: str,
                    payload: dict[str, Any]) -> JSONResponse:
    store = await asyncio.to_thread(_state(request).store)   # the first call creates the directory and prunes
    claim = await asyncio.to_thread(store.claim, source, delivery, name)
    if claim is Claim.SENT:
        log.info("webhook %s delivery %s is a duplicate: nothing started", source, delivery)
        return JSONResponse({"status": "duplicate", "delivery": delivery, "event_id": event_id}, status_code=200)
    client: inngest.Inngest = request.app.state.client
    try:
        ids = await client.send(inngest.Event(name=name, data=payload, id=event_id))
    except Exception as exc:  # the SDK raises its own types for network and auth problems
        ids, problem = [], f"{type(exc).__name__}: {exc}"
    else:
        problem = "no event id returned"
    if not ids:
        await asyncio.to_thread(store.release, source, delivery)
        log.error("webhook %s delivery %s: the engine did not take event %s (%s)", source, delivery, name, problem)
        return _refuse(503, f"the engine did not take the event {name!r} ({problem})", "unavailable",
                       "start the engine ('agentcmd dev' / 'agentcmd start'); the sender's retry will go through")
    await asyncio.to_thread(store.mark_sent, source, delivery)
    log.info("webhook %s delivery %s accepted: event %s (%s)", source, delivery, name, event_id)
    return JSONResponse({"status": "accepted", "event": name, "event_id": event_id, "delivery": delivery},
                        status_code=202)


async def _guarded(handler: Any) -> JSONResponse:
    try:
        response: JSONResponse = await handler
    except Refused as refused:
        return refused.response
    except ClientDisconnect:   # the sender gave up mid-body: nothing was read whole, nothing is stored
        return _refuse(400, "the sender disconnected before the whole body arrived", "bad_request", "send again")
    return response


@router.post("/github")
async def github(request: Request) -> JSONResponse:
    return await _guarded(_github(request))


async def _github(request: Request) -> JSONResponse:
    body = await _signed_body(request, "GitHub", "X-Hub-Signature-256", prefix_required=True)
    event = request.headers.get("x-github-event", "").strip()
    if not _EVENT.match(event):
        raise Refused(_refuse(400, "the X-GitHub-Event header is missing or not an event name", "invalid_input",
                              "GitHub sends it with every delivery; a test must send it too"))
    delivery = _header(request, "x-github-delivery", "the delivery's GUID")
    payload = _payload(request, body)
    if event == "ping":
        log.info("github webhook ping (delivery %s, hook %s)", delivery, payload.get("hook_id"))
        return JSONResponse({"status": "pong", "zen": payload.get("zen")}, status_code=200)
    return await _dispatch(request, "github", delivery, f"github/{event}", f"github-{delivery}", payload)


@router.post("/linear")
async def linear(request: Request) -> JSONResponse:
    return await _guarded(_linear(request))


async def _linear(request: Request) -> JSONResponse:
    body = await _signed_body(request, "Linear", "Linear-Signature")
    payload = _payload(request, body)
    if not webhooksig.fresh(payload.get("webhookTimestamp")):
        log.warning("refused a linear webhook: webhookTimestamp %r is not within %d s of now",
                    payload.get("webhookTimestamp"), webhooksig.LINEAR_MAX_AGE_MS // 1000)
        raise Refused(_refuse(401, "the delivery's webhookTimestamp is missing or more than "
                                   f"{webhooksig.LINEAR_MAX_AGE_MS // 1000} s from now (a replay?)", "unauthorized",
                              "Linear sends it in milliseconds with every delivery; check this machine's clock"))
    delivery = _header(request, "linear-delivery", "the delivery's id")
    given = payload.get("type")
    kind = (given if isinstance(given, str) else request.headers.get("linear-event", "")).strip().lower()
    if not _EVENT.match(kind):
        raise Refused(_refuse(400, "the payload has no usable 'type' (and no Linear-Event header)", "invalid_input",
                              "Linear sends e.g. \"type\": \"Issue\" with every delivery"))
    return await _dispatch(request, "linear", delivery, f"linear/{kind}", f"linear-{delivery}", payload)


@router.post("/generic/{name}")
async def generic(request: Request, name: str) -> JSONResponse:
    return await _guarded(_generic(request, name))


async def _generic(request: Request, name: str) -> JSONResponse:
    hooks = _state(request)
    config = hooks.settings.generic.get(name)
    if config is None:
        raise Refused(_refuse(404, f"no generic webhook named {name[:100]!r} is configured on this app server",
                              "not_found", "add webhooks.generic.{name}.secret to the config file or "
                              "AGENTCMD_WEBHOOKS__GENERIC__<NAME>__SECRET (docs/workflows.md, 'Webhooks'), "
                              "then restart the app server"))
    body = await _body(request, hooks.settings.max_body_bytes)
    if not webhooksig.matches(config.secret.get_secret_value(), body, request.headers.get(config.header)):
        raise _bad_signature(f"generic/{name}", config.header, request)
    if config.delivery_header:
        delivery = _header(request, config.delivery_header, "a unique id per delivery")
    else:   # no delivery id from this sender: the same body is the same delivery
        delivery = "sha256-" + hashlib.sha256(body).hexdigest()
    payload = _payload(request, body)
    return await _dispatch(request, f"generic/{name}", delivery, f"webhook/{name}", f"webhook-{name}-{delivery}",
                           payload)
