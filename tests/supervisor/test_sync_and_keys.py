"""Attacks on a running ``agentcmd start`` / ``dev`` stack: sync hijack, replayed signatures, keys in environ.

Real supervisor, real embedded engine, real app server with the official
SDK. Each test is an attacker's request that worked before the fix.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.harness.processes import Spawned
from tests.supervisor.conftest import child_pids, wait_output

from agentcmd.config.keys import hash_signing_key
from agentcmd.config.sources import read_config_file
from agentcmd.signing import canonical_json, sign

SpawnFn = Callable[..., Spawned]
READY = "ready in "
SDK_PATH = "/api/workflows/inngest"


def request(port: int, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None,
            host: str | None = None) -> tuple[int, Any]:
    """One raw HTTP request (http.client lets the test forge the Host header)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.putrequest(method, path, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")
    finally:
        conn.close()


def start_stack(spawn: SpawnFn, command: str, ports: tuple[int, int], project: Path) -> Spawned:
    child = spawn(command, "--port", str(ports[0]), "--engine-port", str(ports[1]), "--project", str(project))
    wait_output(child, READY, timeout=40)
    return child


def registered_urls(ports: tuple[int, int], key: str | None) -> list[str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    status, body = request(ports[1], "GET", "/v1/apps", headers=headers)
    assert status == 200, body
    return [app["url"] for app in body["data"]]


def keys(home: Path) -> dict[str, str]:
    config = read_config_file(home / "config.json")
    return {"signing_key": config["signing_key"], "event_key": config["event_key"]}


def test_production_refuses_a_sync_that_names_another_host(
        spawn: SpawnFn, ports: tuple[int, int], project: Path, agentcmd_home: Path) -> None:
    start_stack(spawn, "start", ports, project)
    key = keys(agentcmd_home)["signing_key"]
    own = f"http://127.0.0.1:{ports[0]}{SDK_PATH}"
    assert registered_urls(ports, key) == [own]

    status, body = request(ports[0], "PUT", SDK_PATH, host="localhost:9999")
    assert status == 401, body
    assert "configured" in body["error"] and "INNGEST_SERVE_ORIGIN" in body["hint"]
    assert registered_urls(ports, key) == [own], "an unauthenticated PUT must not move the app"

    # The engine's own kind of sync (addressed to the configured URL) still works, and so does an
    # authenticated one; either way the app registers its configured URL.
    status, body = request(ports[0], "PUT", SDK_PATH)
    assert status == 200, body
    status, body = request(ports[0], "PUT", SDK_PATH, host="localhost:9999",
                           headers={"Authorization": f"Bearer {hash_signing_key(key)}"})
    assert status == 200, body
    assert registered_urls(ports, key) == [own]


def test_dev_registers_the_configured_url_whatever_the_host_header(
        spawn: SpawnFn, ports: tuple[int, int], project: Path) -> None:
    start_stack(spawn, "dev", ports, project)
    own = f"http://127.0.0.1:{ports[0]}{SDK_PATH}"
    status, body = request(ports[0], "PUT", SDK_PATH, host="localhost:9999")
    assert status == 200, body
    assert registered_urls(ports, None) == [own]


def signed_post(ports: tuple[int, int], key: str, stamp: int | None) -> tuple[int, Any]:
    payload = {"event": {"name": "x", "data": {}}, "events": [{"name": "x", "data": {}}], "steps": {},
               "ctx": {"run_id": "01REPLAY", "attempt": 0, "disable_immediate_execution": False,
                       "stack": {"stack": []}},
               "use_api": False, "version": 1}
    body = canonical_json(payload)
    header = sign(body, key, stamp) if stamp is not None else sign(body, key).split("&", 1)[1]
    return request(ports[0], "POST", f"{SDK_PATH}?fnId=agentcmd-hello&stepId=step", body=body,
                   headers={"X-Inngest-Signature": header, "Content-Type": "application/json"})


def test_production_refuses_stale_future_and_undated_signatures(
        spawn: SpawnFn, ports: tuple[int, int], project: Path, agentcmd_home: Path) -> None:
    start_stack(spawn, "start", ports, project)
    key = keys(agentcmd_home)["signing_key"]
    now = int(time.time())
    for stamp, why in ((now - 3600, "old"), (now - 365 * 86400, "old"), (now + 3600, "in the future"),
                       (None, "no timestamp")):
        status, body = signed_post(ports, key, stamp)
        assert status == 401, (stamp, body)
        assert why in body["error"], body
    status, body = signed_post(ports, key, now)  # a fresh signature reaches the SDK, which runs the function
    assert status == 200 and body == "hi", (status, body)


def test_keys_are_not_in_the_environment_of_the_app_or_the_engine(
        spawn: SpawnFn, ports: tuple[int, int], project: Path, agentcmd_home: Path) -> None:
    child = start_stack(spawn, "start", ports, project)
    out = child.output()
    assert "synced the app with the engine" in out, "the app's registration is signed: it got the key"
    secrets = keys(agentcmd_home)
    pids = child_pids(out)
    assert set(pids) == {"engine", "app"}
    for name, pid in pids.items():
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        for secret_name, value in secrets.items():
            assert value.encode() not in environ, f"the {name}'s environment holds the {secret_name}"
            hex_part = value.rsplit("-", 1)[-1]
            assert hex_part.encode() not in environ, f"the {name}'s environment holds the {secret_name}"
        assert b"INNGEST_SIGNING_KEY=" not in environ and b"INNGEST_EVENT_KEY=" not in environ
    # The engine still enforces both keys: an event needs the event key.
    status, _ = request(ports[1], "POST", "/e/wrong-key", body=b'{"name": "x", "data": {}}',
                        headers={"Content-Type": "application/json"})
    assert status == 401
    status, body = request(ports[1], "POST", f"/e/{secrets['event_key']}", body=b'{"name": "x", "data": {}}',
                           headers={"Content-Type": "application/json"})
    assert status == 200, body
