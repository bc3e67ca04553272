"""The ``notifications`` setting: where to tell people that a run finished, failed, was cancelled or waits.

Kept apart from ``settings.py`` because it is a small language of its own:
named targets (a JSON webhook, a Slack incoming webhook, the desktop), each
saying which events and which workflows it wants, and per-workflow rules
that narrow both. ``NotificationSettings.targets_for(workflow, event)`` is
the one place that decides who hears of what (docs/workflows.md,
"Notifications"). Target URLs are secrets (a Slack webhook URL is a
credential): they are ``SecretStr`` and only ever shown as their host.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from agentcmd.errors import ConfigError

EVENTS: tuple[str, ...] = ("finished", "failed", "cancelled", "waiting")
TargetType = Literal["webhook", "slack", "desktop"]
EXAMPLE = ('{"targets": {"team": {"type": "slack", "url": "https://hooks.slack.com/services/..."}}, '
           '"workflows": {"fix-tests": {"events": ["failed", "waiting"]}}}')


def url_host(url: str) -> str:
    """What may be shown of a target URL: its scheme and host (``https://hooks.slack.com``), never the path."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme}://{host}{port}"


def _check_events(value: Any, where: str) -> list[str]:
    events = [str(e).strip().lower() for e in (value or [])]
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ConfigError(f"notifications: {where} names unknown event(s) {', '.join(map(repr, unknown))}",
                          f"use some of {', '.join(EVENTS)}")
    return events


class NotifyTarget(BaseModel):
    """One place to notify. ``events``/``workflows`` empty means all of them."""

    model_config = {"extra": "forbid"}

    type: TargetType
    url: SecretStr | None = None
    events: list[str] = Field(default_factory=lambda: list(EVENTS))
    workflows: list[str] = Field(default_factory=list)

    @field_validator("events", mode="before")
    @classmethod
    def _events(cls, v: Any) -> list[str]:
        return _check_events(v, "a target's events") or list(EVENTS)

    @model_validator(mode="after")
    def _url_fits_type(self) -> NotifyTarget:
        url = self.url.get_secret_value().strip() if self.url is not None else ""
        if self.type == "desktop":
            if url:
                raise ConfigError("notifications: a desktop target takes no url", 'write {"type": "desktop"}')
            return self
        if not url:
            raise ConfigError(f"notifications: a {self.type} target needs a url",
                              f'e.g. {{"type": "{self.type}", "url": "https://hooks.example.com/..."}}')
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"notifications: a {self.type} target's url must be an absolute http(s) URL, "
                              f"got one starting {url[:8]!r}", "e.g. https://hooks.slack.com/services/...")
        return self

    @property
    def destination(self) -> str:
        """Where it goes, safe to show: the URL's host, or ``desktop``."""
        return "desktop" if self.url is None else url_host(self.url.get_secret_value())


class WorkflowRule(BaseModel):
    """One workflow's choice: which events (default all) to which targets (default all); ``[]`` silences."""

    model_config = {"extra": "forbid"}

    events: list[str] | None = None
    targets: list[str] | None = None

    @field_validator("events", mode="before")
    @classmethod
    def _events(cls, v: Any) -> list[str] | None:
        return None if v is None else _check_events(v, "a workflow's events")


class NotificationSettings(BaseModel):
    """Targets by name, per-workflow rules, and how hard delivery tries."""

    model_config = {"extra": "forbid"}

    targets: dict[str, NotifyTarget] = Field(default_factory=dict)
    workflows: dict[str, WorkflowRule] = Field(default_factory=dict)
    attempts: int = Field(default=5, ge=1, le=20)
    backoff_seconds: float = Field(default=1.0, gt=0, le=3600, allow_inf_nan=False)
    timeout_seconds: float = Field(default=5.0, gt=0, le=120, allow_inf_nan=False)
    poll_seconds: float = Field(default=2.0, ge=0.1, le=3600, allow_inf_nan=False)

    @model_validator(mode="after")
    def _known_targets(self) -> NotificationSettings:
        for wf, rule in self.workflows.items():
            unknown = [t for t in rule.targets or [] if t not in self.targets]
            if unknown:
                raise ConfigError(f"notifications: workflow {wf!r} names unknown target(s) "
                                  f"{', '.join(map(repr, unknown))}",
                                  "define them under notifications.targets "
                                  f"(known: {', '.join(self.targets) or 'none'})")
        return self

    def targets_for(self, workflow_id: str | None, event: str, code_rule: WorkflowRule | None = None) -> list[str]:
        """The names of the targets that want ``event`` of a run of ``workflow_id``, in settings order.

        ``code_rule`` is the workflow's own ``define_workflow(notify=...)``; a rule for the workflow in
        these settings wins over it, whole."""
        rule = self.workflows.get(workflow_id or "", code_rule)
        out: list[str] = []
        for name, target in self.targets.items():
            if event not in target.events:
                continue
            if target.workflows and (workflow_id or "") not in target.workflows:
                continue
            if rule is not None and ((rule.events is not None and event not in rule.events)
                                     or (rule.targets is not None and name not in rule.targets)):
                continue
            out.append(name)
        return out

    def secrets(self) -> list[str]:
        """Every target URL (and its path), for redaction wherever text could carry one."""
        found: list[str] = []
        for target in self.targets.values():
            if target.url is not None:
                url = target.url.get_secret_value()
                found.append(url)
                path = urlsplit(url).path
                if len(path) > 1:
                    found.append(path)
        return sorted(set(found), key=len, reverse=True)

    def public_view(self) -> dict[str, Any]:
        """The setting with every URL shown as its host only: what ``agentcmd config --show`` prints."""
        data = self.model_dump(mode="json")
        for name, target in self.targets.items():
            data["targets"][name]["url"] = None if target.url is None else target.destination + "/<redacted>"
        return data


def parse_notifications(value: Any) -> Any:
    """The environment gives JSON text (empty means none); a bad one is a ConfigError, not a traceback."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return {}
    import json

    try:
        return json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"notifications is not valid JSON: {exc.args[0] if exc.args else exc}",
                          f"e.g. AGENTCMD_NOTIFICATIONS='{EXAMPLE}'") from None
