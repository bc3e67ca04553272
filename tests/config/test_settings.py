"""Settings precedence: flags > environment > config file > defaults."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agentcmd.config import load_settings
from agentcmd.config.install import ensure_keys
from agentcmd.config.sources import LoosePermissionsWarning, write_config_file
from agentcmd.errors import ConfigError, InvalidSigningKeyError

KEY_A = "signkey-prod-df95a4e9e0de15573029d2c63a3af1655d7af9b9b1b8b50ceb04cafee2f6d982"
KEY_B = "signkey-prod-bf9d36ad3886b8700f4d4fdf47879d1c3250e4f195bc6dad92875fc357da7a98"
EVENT_KEY = "f409725ceb54cf9c9f10e5a2b42c8feb9fc41e77509369e27bbc786651654796"


def write_config(home: Path, data: dict[str, object]) -> Path:
    path = home / "config.json"
    write_config_file(path, data)
    return path


def test_defaults(agentcmd_home: Path) -> None:
    s = load_settings()
    assert (s.host, s.port, s.engine_port, s.engine) == ("127.0.0.1", 4100, 8288, "embedded")
    assert s.home == agentcmd_home
    assert s.resolved_sqlite_dir == agentcmd_home / "data" / "engine"
    assert s.signing_key is None and s.event_key is None


def test_file_beats_defaults_env_beats_file_flags_beat_env(
    agentcmd_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(agentcmd_home, {"port": 5001, "engine_port": 9001, "signing_key": KEY_A})
    s = load_settings()
    assert (s.port, s.engine_port, s.secret("signing_key")) == (5001, 9001, KEY_A)
    monkeypatch.setenv("PORT", "5002")
    monkeypatch.setenv("INNGEST_PORT", "9002")
    monkeypatch.setenv("INNGEST_SIGNING_KEY", KEY_B)
    s = load_settings()
    assert (s.port, s.engine_port, s.secret("signing_key")) == (5002, 9002, KEY_B)
    s = load_settings(port=5003, engine_port=None)
    assert (s.port, s.engine_port) == (5003, 9002)


def test_agentcmd_prefixed_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCMD_ENGINE", "external")
    monkeypatch.setenv("AGENTCMD_ENGINE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("AGENTCMD_AGENTS__CLAUDE__PATH", "/opt/claude")
    s = load_settings()
    assert s.engine == "external" and s.engine_url == "http://127.0.0.1:9999"
    assert s.agents["claude"].path == "/opt/claude"


def test_keys_never_appear_in_repr_or_public_view(agentcmd_home: Path) -> None:
    write_config(agentcmd_home, {"signing_key": KEY_A, "event_key": EVENT_KEY})
    s = load_settings()
    for text in (repr(s), str(s), json.dumps(s.public_view(), default=str)):
        assert KEY_A not in text and EVENT_KEY not in text
    assert s.public_view()["signing_key"] == "signkey-prod-…d982"


@pytest.mark.parametrize("source", ["env", "file", "flag"])
def test_non_hex_signing_key_is_refused_from_every_source(
    source: str, agentcmd_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = "local-prod-signing"
    overrides = {}
    if source == "env":
        monkeypatch.setenv("INNGEST_SIGNING_KEY", bad)
    elif source == "file":
        write_config(agentcmd_home, {"signing_key": bad})
    else:
        overrides = {"signing_key": bad}
    with pytest.raises(InvalidSigningKeyError) as info:
        load_settings(**overrides)
    assert "hex" in info.value.what and bad not in str(info.value)


@pytest.mark.parametrize(("var", "value"), [("PORT", "0"), ("PORT", "70000"), ("INNGEST_PORT", "http")])
def test_port_out_of_range_names_the_setting(var: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert var in info.value.what


def test_invalid_json_config_names_the_file(agentcmd_home: Path) -> None:
    agentcmd_home.mkdir(parents=True)
    path = agentcmd_home / "config.json"
    path.write_text("{not json")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(path) in info.value.what and "line 1" in info.value.what


def test_invalid_field_in_config_names_the_field(agentcmd_home: Path) -> None:
    write_config(agentcmd_home, {"engine_port": "not-a-port"})
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "engine_port" in info.value.what


def test_loose_permissions_warn(agentcmd_home: Path) -> None:
    path = write_config(agentcmd_home, {"port": 4100})
    os.chmod(path, 0o644)
    with pytest.warns(LoosePermissionsWarning, match="chmod 600"):
        load_settings()


def test_ensure_keys_writes_0600_and_keeps_existing_keys(agentcmd_home: Path) -> None:
    first = ensure_keys()
    assert first.changed
    path = agentcmd_home / "config.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert agentcmd_home.stat().st_mode & 0o777 == 0o700
    before = json.loads(path.read_text())
    assert not ensure_keys().changed
    assert json.loads(path.read_text()) == before
    assert ensure_keys(rotate=True).changed
    after = json.loads(path.read_text())
    assert after["signing_key"] != before["signing_key"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_ensure_keys_keeps_other_settings(agentcmd_home: Path) -> None:
    write_config(agentcmd_home, {"port": 4567})
    ensure_keys()
    assert json.loads((agentcmd_home / "config.json").read_text())["port"] == 4567
