"""``GET /metrics`` on the app server: agent tokens and cost from the ledger, and who may scrape."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.harness.appserver import AppServerFactory, bearer

from agentcmd.workflows import costs

# (mode, bind, --dashboard-auth) -> does /metrics need the bearer?
CONFIGS = [
    ("dev", "127.0.0.1", False, False),
    ("dev", "0.0.0.0", False, False),          # dev has no keys: open, like its API
    ("dev", "127.0.0.1", True, True),
    ("production", "127.0.0.1", False, False),  # loopback: open (a local scraper needs no key)
    ("production", "127.0.0.1", True, True),
    ("production", "0.0.0.0", False, True),
]


@pytest.mark.parametrize(("mode", "host", "dashboard_auth", "locked"), CONFIGS)
def test_who_may_scrape(app_server: AppServerFactory, mode: str, host: str, dashboard_auth: bool,
                        locked: bool) -> None:
    served = app_server(mode, host, dashboard_auth)
    plain = httpx.get(f"{served.url}/metrics", timeout=10)
    if locked:
        assert plain.status_code == 401
        assert plain.json()["code"] == "unauthorized" and "Bearer" in plain.json()["hint"]
        assert httpx.get(f"{served.url}/metrics", headers={"Authorization": "Bearer nope"},
                         timeout=10).status_code == 401
    else:
        assert plain.status_code == 200
    ok = httpx.get(f"{served.url}/metrics", headers=bearer(), timeout=10)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert "agentcmd_agent_tokens" in ok.text


def _value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_agent_tokens_and_cost_come_from_the_ledger(app_server: AppServerFactory, tmp_path: Path) -> None:
    served = app_server()
    labels = {"workflow": "metrics-wf", "agent": "claude", "model": "claude-sonnet-4-5"}
    before = httpx.get(f"{served.url}/metrics", timeout=10).text
    for status, cost in (("completed", 0.25), ("failed", 0.5)):
        costs.record_usage_sync(tmp_path, {"run_id": "01RUN", "step_id": "fix", "attempt": 0, **labels,
                                           "input_tokens": 1000, "output_tokens": 200, "cached_tokens": 600,
                                           "cost_usd": cost, "duration_s": 12.5, "status": status})
    after = httpx.get(f"{served.url}/metrics", timeout=10).text
    for kind, tokens in (("input", 2000), ("output", 400), ("cached", 1200)):
        assert _value(after, "agentcmd_agent_tokens_total", kind=kind, **labels) - \
            _value(before, "agentcmd_agent_tokens_total", kind=kind, **labels) == tokens
    assert _value(after, "agentcmd_agent_cost_usd_total", **labels) - \
        _value(before, "agentcmd_agent_cost_usd_total", **labels) == pytest.approx(0.75)
    assert _value(after, "agentcmd_agent_attempts_total", workflow="metrics-wf", agent="claude", status="failed") \
        - _value(before, "agentcmd_agent_attempts_total", workflow="metrics-wf", agent="claude", status="failed") == 1
    assert (tmp_path / "usage" / "runs" / "01RUN.jsonl").read_text().count("\n") == 2   # the ledger still has both
