"""``define_workflow(notify=...)``: a workflow's notification rule in its code, the settings' rule winning.

Checked when the file is imported (bad keys, events or shapes are definition
errors naming the workflow); served by the app server's notifier per notice
(``server/notify.code_rule``, so a reload counts); delivered to real HTTP
targets. A ``notifications.workflows.<id>`` rule replaces the code's whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests.harness.receiver import Receiver
from tests.polling import until as _until

from agentcmd import define_workflow
from agentcmd.config.notifications import NotificationSettings, WorkflowRule
from agentcmd.errors import WorkflowDefinitionError
from agentcmd.server import notify
from agentcmd.server.notify.delivery import Deliveries
from agentcmd.server.notify.targets import Notice
from agentcmd.workflows.loading import discover

WORKFLOWS = '''
from agentcmd import define_workflow


@define_workflow(id="deploy", notify={"events": ["failed", "waiting"], "targets": ["b", "nowhere"]})
async def deploy(ctx, step):
    return 1


@define_workflow(id="quiet", notify=False)
async def quiet(ctx, step):
    return 1


@define_workflow(id="plain")
async def plain(ctx, step):
    return 1
'''


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def served(tmp_path: Path) -> Any:
    """An app-like object whose state holds the discovered workflows, as the app server's does."""
    (tmp_path / ".agentcmd" / "workflows").mkdir(parents=True)
    (tmp_path / ".agentcmd" / "workflows" / "flows.py").write_text(WORKFLOWS)
    discovered = discover(tmp_path, entry_points=False)
    assert not discovered.errors, discovered.errors
    return SimpleNamespace(state=SimpleNamespace(discovered=discovered))


@pytest.mark.parametrize(("notify", "fragment"), [
    ({"event": ["failed"]}, "unknown key(s) 'event'"),
    ({"events": ["exploded"]}, "unknown event(s) 'exploded'"),
    ({"events": "failed"}, "must be a list of names"),
    ({"targets": [1]}, "must be a list of names"),
    ("team", "must be a dict or False"),
])
def test_a_bad_notify_is_refused_when_the_workflow_is_defined(notify: Any, fragment: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as err:
        define_workflow(id="w", notify=notify)
    assert fragment in err.value.what and "'w'" in err.value.what and err.value.fix


def test_the_code_rule_narrows_like_a_settings_rule_and_the_settings_rule_wins(served: Any) -> None:
    settings = NotificationSettings.model_validate({"targets": {"a": {"type": "desktop"}, "b": {"type": "desktop"}}})
    app: Any = served
    rules: dict[str, WorkflowRule | None] = {w: notify.code_rule(app, w) for w in ("deploy", "quiet", "plain")}
    assert rules["plain"] is None and notify.code_rule(app, "nosuch") is None
    described = {w: app.state.discovered.workflows[w].describe()["notify"] for w in ("deploy", "quiet", "plain")}
    assert described == {"deploy": {"events": ["failed", "waiting"], "targets": ["b", "nowhere"]},
                         "quiet": {"events": None, "targets": []}, "plain": None}
    assert settings.targets_for("deploy", "failed", rules["deploy"]) == ["b"]   # 'nowhere' is not a target
    assert settings.targets_for("deploy", "finished", rules["deploy"]) == []
    assert settings.targets_for("quiet", "failed", rules["quiet"]) == []
    assert settings.targets_for("plain", "failed", rules["plain"]) == ["a", "b"]
    overridden = NotificationSettings.model_validate({**settings.model_dump(mode="json"),
                                                      "workflows": {"deploy": {"events": ["finished"]}}})
    assert overridden.targets_for("deploy", "finished", rules["deploy"]) == ["a", "b"]   # the settings' rule, whole
    assert overridden.targets_for("deploy", "failed", rules["deploy"]) == []


async def test_a_notifier_delivers_by_the_workflows_own_rule(tmp_path: Path, receiver: Receiver, served: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    base = f"http://127.0.0.1:{receiver.port}"
    settings = NotificationSettings.model_validate({
        "targets": {"a": {"type": "webhook", "url": f"{base}/a/x"}, "b": {"type": "webhook", "url": f"{base}/b/x"}},
        "attempts": 1, "timeout_seconds": 2})
    app: Any = served
    with caplog.at_level(logging.WARNING, logger="agentcmd.notify"):
        notify._warn_unknown_targets(app, settings)
    assert "'deploy'" in caplog.text and "'nowhere'" in caplog.text
    deliveries = Deliveries(settings, tmp_path, lambda wid: notify.code_rule(app, wid))
    deliveries.start()
    try:
        for run_id, workflow in (("01DEPLOY", "deploy"), ("01QUIET", "quiet"), ("01PLAIN", "plain")):
            deliveries.offer(Notice("failed", run_id, workflow, "Failed", f"{base}/runs/{run_id}",
                                    "2026-12-04T15:00:00.000Z", {"error": "boom"}))
        await _until(lambda: len(receiver.posts) >= 3)
        await _until(lambda: not deliveries.active and deliveries.queue.empty())
    finally:
        await deliveries.stop()
    sent = sorted((p["path"].split("/")[1], p["body"]["run_id"]) for p in receiver.posts)
    assert sent == [("a", "01PLAIN"), ("b", "01DEPLOY"), ("b", "01PLAIN")]
