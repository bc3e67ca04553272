"""The mode table as ``agentcmd dev|start`` applies it (flag > NODE_ENV > INNGEST_DEV_MODE > command)."""

from __future__ import annotations

import pytest

from agentcmd.cli.run import resolve
from agentcmd.config import load_settings
from agentcmd.mode import Mode


@pytest.mark.parametrize(("command", "flag", "node_env", "dev_mode", "expected", "reason"), [
    ("start", None, None, None, Mode.PRODUCTION, "the default of 'agentcmd start'"),
    ("dev", None, None, None, Mode.DEV, "the default of 'agentcmd dev'"),
    ("start", None, "development", None, Mode.DEV, "NODE_ENV=development"),
    ("dev", None, "production", None, Mode.PRODUCTION, "NODE_ENV=production"),
    ("dev", Mode.PRODUCTION, "development", None, Mode.PRODUCTION, "--production"),
    ("start", Mode.DEV, "production", "false", Mode.DEV, "--dev"),
    ("start", None, None, "true", Mode.DEV, "INNGEST_DEV_MODE=true"),
    ("dev", None, None, "false", Mode.PRODUCTION, "INNGEST_DEV_MODE=false"),
    ("start", None, "production", "true", Mode.PRODUCTION, "NODE_ENV=production"),
    ("start", None, "staging", "true", Mode.DEV, "INNGEST_DEV_MODE=true"),
])
def test_mode_priority(monkeypatch: pytest.MonkeyPatch, command: str, flag: Mode | None, node_env: str | None,
                       dev_mode: str | None, expected: Mode, reason: str) -> None:
    if node_env is not None:
        monkeypatch.setenv("NODE_ENV", node_env)
    if dev_mode is not None:
        monkeypatch.setenv("INNGEST_DEV_MODE", dev_mode)
    resolution = resolve(command, flag, load_settings())
    assert (resolution.mode, resolution.reason) == (expected, reason)


def test_an_unknown_node_env_is_ignored_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_ENV", "staging")
    resolution = resolve("start", None, load_settings())
    assert resolution.mode is Mode.PRODUCTION and resolution.warning and "staging" in resolution.warning
