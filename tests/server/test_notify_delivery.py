"""Notification settings and delivery against real HTTP servers and real files (no app server needed).

The end-to-end checks (real engine, app server, both modes) are in
tests/workflows/test_notify_e2e.py; these pin the rules that are quicker to
see up close: the settings' validation and redaction, a delivery cut off by
a stop taken up again however old its run, once-only delivery, a final 4xx,
and a desktop that has no notifier.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.harness.receiver import Receiver
from tests.polling import until as _until

from agentcmd.config import load_settings
from agentcmd.config.notifications import NotificationSettings
from agentcmd.errors import ConfigError
from agentcmd.server.notify import run_notifications, store
from agentcmd.server.notify.delivery import Deliveries
from agentcmd.server.notify.targets import Notice

SECRET = "T000/B000/sekrit-d3adb33f"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _settings(receiver: Receiver, **extra: Any) -> NotificationSettings:
    return NotificationSettings.model_validate({
        "targets": {"hook": {"type": "webhook", "url": f"http://127.0.0.1:{receiver.port}/hook/{SECRET}"}},
        "attempts": 3, "backoff_seconds": 0.05, "timeout_seconds": 2, **extra})


def _notice(run_id: str = "01RUN", event: str = "failed") -> Notice:
    return Notice(event, run_id, "build", "Failed", f"http://127.0.0.1:4100/runs/{run_id}",
                  "2026-12-04T15:00:00.000Z", {"error": "boom"})


# Settings ---------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "fragment"), [
    ({"targets": {"a": {"type": "webhook"}}}, "a webhook target needs a url"),
    ({"targets": {"a": {"type": "slack", "url": "ftp://x/y"}}}, "absolute http(s) URL"),
    ({"targets": {"a": {"type": "desktop", "events": ["exploded"]}}}, "unknown event(s) 'exploded'"),
    ({"targets": {"a": {"type": "desktop"}}, "workflows": {"w": {"targets": ["b"]}}}, "unknown target(s) 'b'"),
    ({"targets": {"a": {"type": "desktop", "url": "http://x"}}}, "a desktop target takes no url"),
])
def test_bad_settings_are_refused_naming_the_problem(value: Any, fragment: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCMD_NOTIFICATIONS", json.dumps(value))
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert fragment in str(err.value.what) + str(err.value)


def test_invalid_json_in_the_environment_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCMD_NOTIFICATIONS", "{targets:")
    with pytest.raises(ConfigError, match="notifications is not valid JSON") as err:
        load_settings()
    assert "AGENTCMD_NOTIFICATIONS=" in err.value.fix


def test_targets_for_follows_the_targets_and_the_workflow_rules() -> None:
    s = NotificationSettings.model_validate({
        "targets": {"all": {"type": "desktop"},
                    "fails": {"type": "desktop", "events": ["failed"]},
                    "deploys": {"type": "desktop", "workflows": ["deploy"]}},
        "workflows": {"quiet": {"targets": []}, "deploy": {"events": ["failed", "waiting"]}}})
    assert s.targets_for("build", "finished") == ["all"]
    assert s.targets_for("build", "failed") == ["all", "fails"]
    assert s.targets_for("deploy", "finished") == []
    assert s.targets_for("deploy", "waiting") == ["all", "deploys"]
    assert s.targets_for("quiet", "failed") == []


def test_config_show_prints_the_host_of_a_target_url_never_the_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTCMD_")}
    env.update(AGENTCMD_HOME=str(tmp_path / "home"), AGENTCMD_NOTIFICATIONS=json.dumps(
        {"targets": {"team": {"type": "slack", "url": f"https://hooks.slack.com/services/{SECRET}"}}}))
    out = subprocess.run([sys.executable, "-m", "agentcmd", "config", "--show"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "https://hooks.slack.com/<redacted>" in out.stdout and "sekrit" not in out.stdout + out.stderr
    assert "sekrit" not in repr(load_settings(notifications={"targets": {"t": {
        "type": "webhook", "url": f"https://x.example/{SECRET}"}}}))


# Delivery ---------------------------------------------------------------------------

async def test_a_delivery_cut_off_by_a_stop_is_taken_up_again_after_a_restart(
        tmp_path: Path, receiver: Receiver) -> None:
    settings = _settings(receiver)
    entry = {"event": "failed", "question": None, "target": "hook", "type": "webhook",
             "destination": "http://127.0.0.1", "status": "retrying", "attempts": 1, "error": "HTTP 502",
             "at": "2026-12-04T15:00:00.000Z", "updated_at": "2026-12-04T15:00:01.000Z",
             "notice": _notice("01OLDRUN").to_json()}
    store.record(tmp_path, "01OLDRUN", entry)   # what the stopped app server left behind
    assert json.loads(store.pending_path(tmp_path).read_text()) == {"runs": ["01OLDRUN"]}
    deliveries = Deliveries(settings, tmp_path)
    deliveries.start()
    try:
        await _until(lambda: receiver.bodies("/hook/"))
        [done] = await _until(lambda: [d for d in store.deliveries(tmp_path, "01OLDRUN")
                                       if d["status"] == "delivered"])
        assert done["attempts"] == 2
        await _until(lambda: json.loads(store.pending_path(tmp_path).read_text()) == {"runs": []})
        assert (store.status_path(tmp_path, "01OLDRUN").stat().st_mode & 0o777) == 0o600
    finally:
        await deliveries.stop()
    [body] = receiver.bodies("/hook/")
    assert body["run_id"] == "01OLDRUN" and body["detail"] == {"error": "boom"}


async def test_each_run_event_and_target_is_delivered_once(tmp_path: Path, receiver: Receiver) -> None:
    for _ in range(2):   # a second app server life offered the same run again
        deliveries = Deliveries(_settings(receiver), tmp_path)
        deliveries.start()
        deliveries.offer(_notice())
        deliveries.offer(_notice())
        await _until(lambda: store.find(tmp_path, "01RUN", ("failed", "", "hook")) is not None
                     and store.find(tmp_path, "01RUN", ("failed", "", "hook"))["status"] == "delivered")
        await _until(lambda d=deliveries: not d.active and d.queue.empty())   # nothing else in flight
        await deliveries.stop()
    assert len(receiver.bodies("/hook/")) == 1
    [shown] = await run_notifications(tmp_path, "01RUN")
    assert "notice" not in shown and shown["destination"] == f"http://127.0.0.1:{receiver.port}"


async def test_a_4xx_answer_is_final_at_once_and_the_error_shows_no_url(tmp_path: Path, receiver: Receiver,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    receiver.status = 404
    deliveries = Deliveries(_settings(receiver), tmp_path)
    deliveries.start()
    try:
        with caplog.at_level(logging.DEBUG):
            deliveries.offer(_notice())
            entry = await _until(lambda: (e := store.find(tmp_path, "01RUN", ("failed", "", "hook")))
                                 and e["status"] == "failed" and e)
    finally:
        await deliveries.stop()
    assert entry["attempts"] == 1 and entry["error"] == "HTTP 404"
    assert len(receiver.posts) == 1
    assert "sekrit" not in caplog.text and "sekrit" not in store.status_path(tmp_path, "01RUN").read_text()


async def test_a_desktop_without_a_notifier_is_unavailable_and_said_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr("agentcmd.server.notify.targets._said_unavailable", False)
    deliveries = Deliveries(NotificationSettings.model_validate({"targets": {"me": {"type": "desktop"}}}), tmp_path)
    deliveries.start()
    try:
        with caplog.at_level(logging.WARNING, logger="agentcmd.notify"):
            for run_id in ("01A", "01B"):
                deliveries.offer(_notice(run_id))
            for run_id in ("01A", "01B"):
                await _until(lambda r=run_id: (e := store.find(tmp_path, r, ("failed", "", "me")))  # type: ignore[misc]
                             and e["status"] == "unavailable")
    finally:
        await deliveries.stop()
    assert caplog.text.count("desktop notifications are unavailable") == 1
