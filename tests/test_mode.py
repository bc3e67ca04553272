"""Mode resolution: flag > NODE_ENV > the command's default, with the reason shown."""

from __future__ import annotations

import pytest

from agentcmd.mode import Mode, resolve_mode

P, D = Mode.PRODUCTION, Mode.DEV


@pytest.mark.parametrize(
    ("flag", "node_env", "command", "mode", "reason"),
    [
        (None, None, "start", P, "the default of 'agentcmd start'"),
        (None, None, "dev", D, "the default of 'agentcmd dev'"),
        (None, "production", "dev", P, "NODE_ENV=production"),
        (None, "development", "start", D, "NODE_ENV=development"),
        (None, "PRODUCTION", "dev", P, "NODE_ENV=PRODUCTION"),
        ("production", "development", "dev", P, "--production"),
        ("dev", "production", "start", D, "--dev"),
        (P, None, "start", P, "--production"),
        (None, "", "start", P, "the default of 'agentcmd start'"),
    ],
)
def test_priority_table(flag: str | None, node_env: str | None, command: str, mode: Mode, reason: str) -> None:
    res = resolve_mode(flag, node_env, command)
    assert (res.mode, res.reason, res.warning) == (mode, reason, None)


@pytest.mark.parametrize("node_env", ["test", "staging", "prod-ish"])
def test_unknown_node_env_warns_and_falls_back(node_env: str) -> None:
    res = resolve_mode(None, node_env, "start")
    assert res.mode is Mode.PRODUCTION
    assert res.warning is not None and node_env in res.warning and "ignoring" in res.warning


def test_describe_says_where_the_mode_came_from() -> None:
    assert resolve_mode("production", None, "dev").describe() == "production (from --production)"
