"""The SDK environment of the app process, per mode."""

from __future__ import annotations

from tests.harness.keys import ENGINE_SIGNING_KEY

from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode

KEY = ENGINE_SIGNING_KEY


def test_production_removes_inngest_dev_sets_base_url_and_exports_keys() -> None:
    base = {"INNGEST_DEV": "1", "PATH": "/bin", "INNGEST_API_BASE_URL": "http://stale:1"}
    env = inngest_env(Mode.PRODUCTION, "http://127.0.0.1:8288/", event_key="ek", signing_key=KEY, base=base)
    assert "INNGEST_DEV" not in env and "INNGEST_API_BASE_URL" not in env
    assert env["INNGEST_BASE_URL"] == "http://127.0.0.1:8288"
    assert env["INNGEST_EVENT_KEY"] == "ek" and env["INNGEST_SIGNING_KEY"] == KEY
    assert env["PATH"] == "/bin"
    assert base["INNGEST_DEV"] == "1"  # the input is not modified


def test_dev_sets_inngest_dev_and_exports_no_keys() -> None:
    base = {"INNGEST_SIGNING_KEY": KEY, "INNGEST_EVENT_KEY": "ek"}
    env = inngest_env(Mode.DEV, "http://127.0.0.1:9000", event_key="ek", signing_key=KEY, base=base)
    assert env["INNGEST_DEV"] == "1"
    assert env["INNGEST_BASE_URL"] == "http://127.0.0.1:9000"
    assert "INNGEST_SIGNING_KEY" not in env and "INNGEST_EVENT_KEY" not in env
