"""Webhook routes on an in-process app server: unconfigured sources, an engine that is down, settings."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tests.harness.webhookpayloads import encode, github_headers, github_issue_labeled

from agentcmd.config import load_settings
from agentcmd.errors import ConfigError
from agentcmd.server.webhookstore import DeliveryStore

SECRET = "0123456789abcdef-secret"


def _deliveries(home: Path) -> Path:
    return home / "data" / "webhooks" / "deliveries"


def test_unconfigured_sources_answer_404_saying_how_to_configure_them(app_server: Any, agentcmd_home: Path) -> None:
    server = app_server()
    body = encode(github_issue_labeled())
    resp = server.post("/api/webhooks/github", content=body, headers=github_headers(SECRET, body))
    assert resp.status_code == 404 and "AGENTCMD_WEBHOOKS__GITHUB__SECRET" in resp.json()["hint"]
    assert server.post("/api/webhooks/linear", content=b"{}").status_code == 404
    assert server.post("/api/webhooks/generic/deploy", content=b"{}").status_code == 404
    assert not _deliveries(agentcmd_home).exists()


def test_an_engine_that_is_down_gets_503_and_the_senders_retry_is_not_a_duplicate(
        app_server: Any, agentcmd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agentcmd_home.mkdir(mode=0o700, exist_ok=True)
    config = agentcmd_home / "config.json"   # the config file is a place for secrets too (0600)
    config.write_text(json.dumps({"webhooks": {"github": {"secret": SECRET}}}))
    os.chmod(config, 0o600)
    server = app_server()
    body = encode(github_issue_labeled())
    headers = github_headers(SECRET, body)
    for _ in range(2):
        resp = server.post("/api/webhooks/github", content=body, headers=headers)
        assert resp.status_code == 503 and resp.json()["code"] == "unavailable", resp.text
    assert DeliveryStore(_deliveries(agentcmd_home)).count() == 0
    # Only the signed POST is exempt from the API's rules: a GET there is an ordinary API request.
    assert server.get("/api/webhooks/github").status_code in (404, 405)


def test_webhook_secrets_are_checked_and_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCMD_WEBHOOKS__GITHUB__SECRET", "too-short")
    with pytest.raises(ConfigError, match="shorter than 16 characters") as err:
        load_settings()
    assert "too-short" not in str(err.value.what) + str(err.value.fix)
    monkeypatch.setenv("AGENTCMD_WEBHOOKS__GITHUB__SECRET", SECRET)
    monkeypatch.setenv("AGENTCMD_WEBHOOKS__GENERIC__DEPLOY__SECRET", SECRET + "-deploy")
    settings = load_settings()
    assert settings.webhooks.generic["deploy"].header == "X-Signature-256"
    assert settings.webhooks.max_body_bytes == 1024 * 1024
    shown = json.dumps(settings.public_view(), default=str) + repr(settings)
    assert SECRET not in shown and "**********" in shown
    monkeypatch.setenv("AGENTCMD_WEBHOOKS__MAX_BODY_BYTES", str(64 * 1024 * 1024))
    with pytest.raises(ConfigError, match="webhooks"):
        load_settings()
