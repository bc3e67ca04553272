"""``POST /e/{key}`` and the event reads, in both modes."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
from ulid import ULID


def _post(engine: Any, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(f"{engine.url}/e/{engine.key}", timeout=5, **kw,
                      **({"json": body} if not isinstance(body, bytes) else {"content": body}))


def test_one_event_or_a_list_get_ulid_ids_and_a_default_ts(module_engine: Any) -> None:
    before = int(time.time() * 1000)
    one = _post(module_engine, {"name": "ev/one", "data": {"a": 1}})
    many = _post(module_engine, [{"name": "ev/many", "data": {"i": i}} for i in range(3)])
    assert one.status_code == 200 and one.json()["status"] == 200
    ids = one.json()["ids"] + many.json()["ids"]
    assert len(ids) == 4 and all(str(ULID.from_str(i)) == i for i in ids)
    event = module_engine.get(f"/v1/events/{ids[0]}").json()["data"]
    assert event["name"] == "ev/one" and event["data"] == {"a": 1}
    assert event["id"] == ids[0] and event["ts"] >= before


def test_a_sender_id_is_an_idempotency_key(module_engine: Any) -> None:
    first = _post(module_engine, {"name": "ev/idem", "id": "order-1"}).json()["ids"]
    again = _post(module_engine, {"name": "ev/idem", "id": "order-1"}).json()["ids"]
    assert first == again
    names = [e["name"] for e in module_engine.get("/v1/events?name=ev/idem").json()["data"]]
    assert names == ["ev/idem"]


def test_the_seed_header_makes_client_retries_reuse_ids(module_engine: Any) -> None:
    seed = f"{int(time.time() * 1000)},{base64.b64encode(b'0123456789').decode()}"
    a = _post(module_engine, [{"name": "ev/seed"}, {"name": "ev/seed"}],
              headers={"x-inngest-event-id-seed": seed}).json()["ids"]
    b = _post(module_engine, [{"name": "ev/seed"}, {"name": "ev/seed"}],
              headers={"x-inngest-event-id-seed": seed}).json()["ids"]
    assert a == b and len(set(a)) == 2


def test_bad_events_are_400_with_a_json_error(module_engine: Any) -> None:
    for body, fragment in [({"data": {}}, "name is empty"), ({"name": "x", "data": 5}, "'data' must be an object"),
                           ({"name": "x", "ts": "yesterday"}, "'ts'"), ({"name": "inngest/x"}, "reserved"),
                           (b"{not json", "not valid JSON")]:
        r = _post(module_engine, body)
        assert r.status_code == 400, r.text
        assert fragment in r.json()["error"] and r.json()["ids"] == []


def test_unknown_ids_are_404_with_a_hint(module_engine: Any) -> None:
    for path in ("/v1/events/nope", "/v1/runs/nope", "/v1/runs/nope/steps"):
        r = module_engine.get(path)
        assert r.status_code == 404 and r.json()["code"] == "not_found" and r.json()["hint"]
