"""``agentcmd engine dev|start`` as a user runs it: start line, bad input, signals, bad databases."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

GOOD_KEY = "signkey-prod-36a1f3b2dec415623923fcb56949e180259e4cfc2b583737062f1506a3ad3652"
GOOD_EVENT_KEY = "f409725ceb54cf9c9f10e5a2b42c8feb9fc41e77509369e27bbc786651654796"


def test_help_does_not_import_the_engine(engine_cli: Any) -> None:
    out = subprocess.run([sys.executable, "-c", "import sys, agentcmd.cli; "
                          "print(sorted(m for m in sys.modules if m.startswith(('agentcmd.engine', 'aiohttp', "
                          "'starlette', 'uvicorn'))))"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    r = engine_cli("engine", "--help")
    assert r.returncode == 0 and "dev" in r.stdout and "start" in r.stdout


@pytest.mark.parametrize(("env", "args", "expected"), [
    ({}, (), "no signing key"),
    ({"INNGEST_SIGNING_KEY": GOOD_KEY}, (), "no event key"),
    ({"INNGEST_EVENT_KEY": GOOD_EVENT_KEY}, ("--signing-key", "local-prod-signing"), "not hex"),
    ({"INNGEST_EVENT_KEY": GOOD_EVENT_KEY, "INNGEST_SIGNING_KEY": "signkey-prod-abc"}, (), "odd number of hex digits"),
    ({"INNGEST_EVENT_KEY": GOOD_EVENT_KEY, "INNGEST_SIGNING_KEY": "signkey-prod-00"}, (), "too weak"),
    ({"INNGEST_EVENT_KEY": GOOD_EVENT_KEY, "INNGEST_SIGNING_KEY": "signkey-prod-" + "ab" * 32}, (), "too weak"),
    ({"INNGEST_EVENT_KEY": "a", "INNGEST_SIGNING_KEY": GOOD_KEY}, (), "event key"),
])
def test_start_refuses_missing_or_bad_keys(env: dict[str, str], args: tuple[str, ...], expected: str,
                                           port: int, engine_cli: Any) -> None:
    r = engine_cli("engine", "start", "--port", str(port), *args, env=env)
    assert r.returncode == 2, r.stderr
    assert expected in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr
    assert "local-prod-signing" not in r.stderr           # never echo the key


def test_port_in_use_is_a_clear_error(port: int, engine_cli: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        r = engine_cli("engine", "dev", "--port", str(port), "--no-discovery")
    assert r.returncode == 2
    assert f"127.0.0.1:{port}" in r.stderr and "--port" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_start_line_and_clean_exit_on_signal(sig: signal.Signals, engine_factory: Any) -> None:
    dev = engine_factory("dev")
    prod = engine_factory("production")
    for engine in (dev, prod):
        assert engine.proc is not None
        engine.proc.send_signal(sig)
        assert engine.proc.wait(15) == 0, engine.output()
    dev_line = dev.output().splitlines()[0]
    assert "dev mode" in dev_line and "in memory" in dev_line and dev.url in dev_line
    prod_line = prod.output().splitlines()[0]
    assert "production mode" in prod_line and str(prod.sqlite_dir) in prod_line and prod.url in prod_line
    assert "persist" in prod_line
    assert GOOD_KEY not in prod.output() and prod.signing_key not in prod.output()


def test_keys_come_from_the_config_file(tmp_path: Path, port: int) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"signing_key": GOOD_KEY, "event_key": "file-" + GOOD_EVENT_KEY}))
    os.chmod(home / "config.json", 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
    env["AGENTCMD_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "agentcmd", "engine", "start", "--port", str(port),
                             "--sqlite-dir", str(tmp_path / "db")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "production mode" in line, line + proc.stdout.read()
        import httpx
        r = httpx.post(f"http://127.0.0.1:{port}/e/file-{GOOD_EVENT_KEY}", json={"name": "t/x"}, timeout=5)
        assert r.status_code == 200
    finally:
        proc.terminate()
        rc = proc.wait(15)
        assert proc.stdout is not None
        proc.stdout.close()
    assert rc == 0


def _prod_env(tmp_path: Path) -> dict[str, str]:
    return {"INNGEST_SIGNING_KEY": GOOD_KEY, "INNGEST_EVENT_KEY": GOOD_EVENT_KEY,
            "AGENTCMD_HOME": str(tmp_path / "home")}


def test_corrupt_database_exits_3_naming_the_file(tmp_path: Path, port: int, engine_cli: Any) -> None:
    db = tmp_path / "db"
    db.mkdir()
    (db / "engine.db").write_bytes(b"garbage, not sqlite " * 200)
    r = engine_cli("engine", "start", "--port", str(port), "--sqlite-dir", str(db), env=_prod_env(tmp_path))
    assert r.returncode == 3, r.stderr
    assert str(db / "engine.db") in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr


def test_newer_database_exits_3_and_says_to_upgrade(tmp_path: Path, port: int, engine_factory: Any,
                                                    engine_cli: Any) -> None:
    engine = engine_factory("production")
    assert engine.stop() == 0
    assert engine.sqlite_dir is not None
    with sqlite3.connect(engine.sqlite_dir / "engine.db") as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (999)")
    r = engine_cli("engine", "start", "--port", str(port), "--sqlite-dir", str(engine.sqlite_dir),
                   env=_prod_env(tmp_path))
    assert r.returncode == 3 and "999" in r.stderr and "upgrade" in r.stderr


def test_second_engine_on_the_same_directory_exits_3(tmp_path: Path, port: int, engine_factory: Any,
                                                     engine_cli: Any) -> None:
    engine = engine_factory("production")
    r = engine_cli("engine", "start", "--port", str(port), "--sqlite-dir", str(engine.sqlite_dir),
                   env=_prod_env(tmp_path))
    assert r.returncode == 3 and "in use by another engine" in r.stderr
