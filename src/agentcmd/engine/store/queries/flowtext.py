"""Flow-control state in words: why a run waits, what a skip means, a function's flow options.

The engine keeps this state in its own tables (docs/flow-control.md):

* ``flow_waiting`` (migration 0003): a call parked on a full concurrency
  key, or on a paused function (key ``paused:<slug>``, limit 0);
* a throttled (or negatively prioritised) run is a ``start`` queue row with
  a ``ready_at`` in the future;
* ``flow_paused`` (0004): paused functions; ``flow_skips`` (0003): events
  that started no run of a function, and why (``rate_limit``, ``paused``,
  ``singleton``).

The queries in ``flow.py`` and ``runs.py`` read that state; this module
turns it into sentences ("waiting: concurrency limit 10 on key \"acct-1\"")
without SQL of its own. Key formats are ``flow/concurrency.py``'s
(``fn:<slug>:<value>``, ``env:<value>``, ``account:<value>``) and
``flow/pause.py``'s.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

SKIP_REASONS = {
    "rate_limit": "skipped by rate limit",
    "paused": "skipped: the function was paused",
    "singleton": "skipped by singleton: a run for the same key was in progress",
}


def waiting_reason(key: str, limit: int) -> str:
    """A parked call's key as a sentence; the key's value quoted, as the user's expression produced it."""
    if key.startswith("paused:"):
        return "waiting: the function is paused"
    scope, _, rest = key.partition(":")
    if scope == "fn":
        _slug, _, value = rest.partition(":")
        where = f"on key {json.dumps(value)}" if value else "for the function"
        return f"waiting: concurrency limit {limit} {where}"
    if scope in ("env", "account"):
        return f"waiting: concurrency limit {limit} on {scope} key {json.dumps(rest)}"
    return f"waiting: concurrency limit {limit} on {key}"


def app_waiting(app: dict[str, Any] | None) -> str | None:
    """A run waiting for its app (engine/store/waits.py) in words: "waiting for app <id>: unreachable since <time>"."""
    if not app:
        return None
    since = datetime.fromtimestamp(int(app["since"]) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"waiting for app {app['app_id']}: unreachable since {since}"


def delay_reason(config: dict[str, Any]) -> str:
    """Why a run's first call is scheduled later: throttle, else a negative priority."""
    th = config.get("throttle")
    if isinstance(th, dict) and th.get("limit"):
        return f"waiting: throttle {th.get('limit')} per {th.get('period') or '60s'}"
    if isinstance(config.get("priority"), dict):
        return "waiting: delayed by priority"
    return "waiting: scheduled start"


def skip_text(reason: str) -> str:
    return SKIP_REASONS.get(reason, f"skipped: {reason}")


def flow_settings(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The function's flow-control options, one (option, summary) line each, for its page."""
    out: list[tuple[str, str]] = []
    for entry in config.get("concurrency") or []:
        if isinstance(entry, dict):
            key = f" per {entry['key']}" if entry.get("key") else ""
            scope = entry.get("scope") or "fn"
            calls = "call" if entry.get("limit") == 1 else "calls"
            out.append(("concurrency", f"{entry.get('limit')} {calls} in flight{key} (scope {scope})"))
    for name in ("throttle", "rateLimit"):
        opt = config.get(name)
        if isinstance(opt, dict) and opt.get("limit"):
            key = f" per {opt['key']}" if opt.get("key") else ""
            burst = f", burst {opt['burst']}" if name == "throttle" and opt.get("burst") else ""
            out.append((name, f"{opt.get('limit')} per {opt.get('period') or '60s'}{key}{burst}"))
    for name in ("debounce", "batchEvents", "singleton", "priority", "timeouts"):
        opt = config.get(name)
        if isinstance(opt, dict) and opt:
            out.append((name, ", ".join(f"{k} {v}" for k, v in opt.items())))
    if isinstance(config.get("idempotency"), str) and config["idempotency"]:
        out.append(("idempotency", str(config["idempotency"])))
    return out


def run_waiting(parked: str | None, delayed_until: int | None, status: str, config_json: str | None,
                now: int) -> str | None:
    """The runs list's "waiting: ..." for one run, from ``flow.WAITING_SQL``/``DELAYED_SQL`` (None if not waiting)."""
    if parked:
        key, _, lim = parked.rpartition("\x1f")
        return waiting_reason(key, int(lim or 0))
    if status == "Queued" and delayed_until is not None and delayed_until > now:
        try:
            config = json.loads(config_json or "{}")
        except ValueError:
            config = {}
        return delay_reason(config if isinstance(config, dict) else {})
    return None
