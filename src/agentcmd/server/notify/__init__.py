"""Notifications: tell a JSON webhook, a Slack channel or the desktop when a run ends or waits.

The app server starts one ``Notifier`` in its lifespan when the
``notifications`` setting names at least one target (``start``); it
watches the engine for run ends and listens for run events
(``watcher.py``), and delivers in the background with retries
(``delivery.py``, ``targets.py``), keeping each run's last delivery status
in ``<data dir>/runs/<run id>/notifications.json`` (``store.py``), which
``GET /api/runs/{id}`` and the run page show (``run_notifications``).
docs/workflows.md, "Notifications", is the user's side.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from agentcmd.config.notifications import NotificationSettings, WorkflowRule
from agentcmd.server.notify import store
from agentcmd.server.notify.delivery import Deliveries
from agentcmd.server.notify.watcher import Watcher

log = logging.getLogger("agentcmd.notify")


@dataclasses.dataclass
class Notifier:
    deliveries: Deliveries
    watcher: Watcher

    async def stop(self) -> None:
        self.watcher.stop()
        await self.deliveries.stop()


def address_of(host: str, port: int) -> str:
    """``http://HOST:PORT`` for a bind; a wildcard bind is shown as loopback (set ``public_url`` for others)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def link_base(app: FastAPI) -> str:
    """Where people open the app: ``public_url``, else the address the app server listens on."""
    from agentcmd.config import load_settings

    settings = load_settings()
    if settings.public_url:
        return settings.public_url.rstrip("/")
    address = getattr(app.state, "address", None)
    return str(address).rstrip("/") if address else f"http://{settings.host}:{settings.port}"


async def start(app: FastAPI) -> Notifier | None:
    """Start notifying, when the settings name any target; never fails the app's start."""
    try:
        from agentcmd.config import load_settings

        settings = load_settings().notifications
        if not settings.targets:
            return None
        base = link_base(app)
        deliveries = Deliveries(settings, app.state.runtime.data_dir, lambda wid: code_rule(app, wid))
        _warn_unknown_targets(app, settings)
        watcher = Watcher(deliveries, app.state.engine, lambda run_id: f"{base}/runs/{run_id}",
                          settings.poll_seconds)
        deliveries.start()
        watcher.start()
        log.info("notifications on: %s", ", ".join(f"{name} ({t.type}, {t.destination})"
                                                   for name, t in settings.targets.items()))
        return Notifier(deliveries, watcher)
    except Exception:
        log.exception("notifications could not start; runs go on without them")
        return None


def code_rule(app: FastAPI, workflow_id: str | None) -> WorkflowRule | None:
    """The served workflow's ``define_workflow(notify=...)`` as a settings rule (read per notice: reloads count)."""
    discovered = getattr(app.state, "discovered", None)
    wf = discovered.workflows.get(workflow_id or "") if discovered is not None else None
    rule = wf.spec.notify if wf is not None else None
    return None if rule is None else WorkflowRule.model_validate(rule.to_json())


def _warn_unknown_targets(app: FastAPI, settings: NotificationSettings) -> None:
    """A workflow's notify= naming a target the settings lack sends it nothing: say so once, at start."""
    discovered = getattr(app.state, "discovered", None)
    for wf in (discovered.workflows.values() if discovered is not None else ()):
        rule = wf.spec.notify
        unknown = [t for t in (rule.targets or ()) if t not in settings.targets] if rule is not None else []
        if unknown:
            log.warning("workflow %r: notify= names target(s) %s that the notifications setting does not define; "
                        "nothing is sent to them (known: %s)", wf.spec.id, ", ".join(map(repr, unknown)),
                        ", ".join(settings.targets) or "none")


async def run_notifications(data_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """The run's last delivery status per event and target (no URLs: they are secrets)."""
    found = await asyncio.to_thread(store.deliveries, data_dir, run_id)
    return [{k: v for k, v in entry.items() if k != "notice"} for entry in found]
