"""Pause and Unpause buttons on a function's dashboard page, and ``GET /v1/functions/{id}/skips``.

On a real engine (dev and production) driving the real SDK: a function
paused from its page starts no run for the next event, which the REST route
then lists as a skip (by slug and by uuid); a run held by the pause resumes
when the page's Unpause button is pressed. The buttons are CSRF-protected
forms like Cancel and Replay, and the REST route needs the bearer in
production like the rest of ``/v1``.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import inngest
from tests.harness.engine import sdk_stack
from tests.polling import wait_for

from agentcmd.webauth import Route, classify

State = dict[str, Any]
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
PAUSED_WAIT = "waiting: the function is paused"


def _functions(client: Any, state: State) -> list[Any]:
    @client.create_function(fn_id="holdable", trigger=inngest.TriggerEvent(event="dp/go"), retries=0)
    async def holdable(ctx: inngest.Context) -> Any:
        n = ctx.event.data.get("n", 0)
        gate = ctx.event.data.get("gate")

        async def first() -> str:
            deadline = time.monotonic() + 20
            while gate and not Path(gate).exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            state.setdefault("steps", []).append(f"a-{n}")
            return "a"

        async def second() -> str:
            state.setdefault("steps", []).append(f"b-{n}")
            return "b"

        await ctx.step.run("a", first)
        return await ctx.step.run("b", second)

    @client.create_function(fn_id="bystander", trigger=inngest.TriggerEvent(event="dp/go"), retries=0)
    async def bystander(ctx: inngest.Context) -> str:
        return "dispatched"

    return [holdable, bystander]


stack = sdk_stack("dp", _functions)


def _runs_by_function(engine: Any, event_id: str) -> dict[str, dict[str, Any]]:
    return {r["function_slug"]: r for r in engine.get(f"/v1/events/{event_id}/runs").json()["data"]}


def _paused(engine: Any, slug: str) -> bool:
    return bool({f["slug"]: f["paused"] for f in engine.get("/v1/functions").json()["data"]}[slug])


def engine_twin(engine: Any, path: str) -> Any:
    """A dashboard page's JSON twin (open on a loopback engine in both modes)."""
    return httpx.get(engine.url + path, timeout=5).json()


def _press(browser: httpx.Client, slug: str, button: str, **kwargs: Any) -> httpx.Response:
    """Open the function's page, then post the form the page shows for ``button`` with its CSRF token."""
    page = browser.get(f"/functions/{slug}").text
    assert f'data-testid="{button}-form"' in page, f"the page shows no {button} button"
    form = page[page.index(f'data-testid="{button}-form"'):]
    return browser.post(f"/functions/{slug}/{button}", data={"csrf_token": CSRF.findall(form)[0]}, **kwargs)


def test_pausing_from_the_dashboard_turns_the_next_event_into_a_skip_listed_by_the_rest_api(
        stack: Any, send_event: Any) -> None:
    engine, _, app_id = stack
    slug = f"{app_id}-holdable"
    with httpx.Client(base_url=engine.url, timeout=10) as browser:
        page = browser.get(f"/functions/{slug}").text
        assert f"agentcmd functions pause {slug}" in page and "/unpause</code>" not in page
        posted = _press(browser, slug, "pause")
        assert posted.status_code == 303, posted.text
        target = posted.headers["location"]
        assert (urlsplit(target).path, parse_qs(urlsplit(target).query)) == (f"/functions/{slug}",
                                                                              {"notice": ["paused"]})
        landed = browser.get(target).text
        assert "Function paused." in landed and 'data-testid="unpause-form"' in landed
        assert f"agentcmd functions unpause {slug}" in landed
    try:
        assert _paused(engine, slug), "the REST API sees the pause made by the button"
        eid = send_event(engine, "dp/go", {"n": 1})
        runs = wait_for(lambda: (x := _runs_by_function(engine, eid)) and f"{app_id}-bystander" in x and x,
                        what="the event to be dispatched to the other function")
        skips = wait_for(lambda: engine.get(f"/v1/functions/{slug}/skips").json()["data"], what="the skip")
        assert slug not in runs, "the paused function started no run"
        newest = skips[0]
        assert {k: newest[k] for k in ("event_id", "event_name", "reason", "function_slug")} == {
            "event_id": eid, "event_name": "dp/go", "reason": "paused", "function_slug": slug}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", newest["at"])
        uuid = next(f["id"] for f in engine.get("/v1/functions").json()["data"] if f["slug"] == slug)
        assert engine.get(f"/v1/functions/{uuid}/skips", params={"limit": 1}).json()["data"] == [newest]
        assert engine.get(f"/v1/functions/{app_id}-bystander/skips").json()["data"] == []
    finally:
        httpx.post(f"{engine.url}/v1/functions/{slug}/unpause", headers=engine.headers, timeout=5)


def test_unpausing_from_the_dashboard_resumes_a_run_held_by_the_pause(stack: Any, send_event: Any,
                                                                      wait_for_run_status: Any,
                                                                      tmp_path: Path) -> None:
    engine, state, app_id = stack
    slug = f"{app_id}-holdable"
    gate = tmp_path / "gate"
    eid = send_event(engine, "dp/go", {"n": 2, "gate": str(gate)})
    run_id = wait_for(lambda: _runs_by_function(engine, eid).get(slug), what="the run")["run_id"]
    wait_for(lambda: any(w["kind"] == "running" for w in engine_twin(engine, f"/runs/{run_id}.json")["waits"]),
             what="step a to be in flight")
    with httpx.Client(base_url=engine.url, timeout=10) as browser:
        answer = _press(browser, slug, "pause", headers={"accept": "application/json"})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"data": {"function_id": slug, "paused": True, "changed": True,
                                          "resumed_calls": 0}}
        gate.touch()   # step a returns; the call after it must wait for the pause
        held = wait_for(lambda: [w for w in engine_twin(engine, f"/functions/{slug}.json")["waiting"]
                                 if w["text"] == PAUSED_WAIT],
                        what="the run's next call to be held by the pause")
        assert held[0]["calls"] == 1 and "b-2" not in state["steps"]
        assert engine.get(f"/v1/runs/{run_id}").json()["data"]["status"] == "Running"

        posted = _press(browser, slug, "unpause")
        assert posted.status_code == 303, posted.text
        assert parse_qs(urlsplit(posted.headers["location"]).query) == {"notice": ["unpaused"], "n": ["1"]}
        landed = browser.get(posted.headers["location"]).text
        assert "Function unpaused: 1 held call resumed." in landed and 'data-testid="pause-form"' in landed
    wait_for_run_status(engine, run_id, "Completed")
    assert state["steps"].count("b-2") == 1
    assert not _paused(engine, slug)


def test_the_buttons_need_the_csrf_token_and_a_known_function(stack: Any) -> None:
    engine, _, app_id = stack
    slug = f"{app_id}-holdable"
    assert classify("POST", f"/functions/{slug}/pause") is Route.ACTION
    assert classify("POST", f"/functions/{slug}/unpause") is Route.ACTION
    with httpx.Client(base_url=engine.url, timeout=10) as browser:
        browser.get(f"/functions/{slug}")   # the browser has its CSRF cookie, but posts no token
        for button in ("pause", "unpause"):
            refused = browser.post(f"/functions/{slug}/{button}", data={})
            assert refused.status_code == 403, refused.text
            as_json = browser.post(f"/functions/{slug}/{button}", headers={"accept": "application/json"})
            assert as_json.status_code == 403 and as_json.json()["code"]
        assert not _paused(engine, slug)
        token = CSRF.findall(browser.get("/apps").text)[-1]
        missing = browser.post("/functions/no-such-fn/pause", data={"csrf_token": token},
                               headers={"accept": "application/json"})
        assert missing.status_code == 404 and "apps page" in missing.json()["hint"]


def test_the_skips_route_needs_the_bearer_in_production_and_says_what_is_wrong(stack: Any) -> None:
    engine, _, app_id = stack
    slug = f"{app_id}-holdable"
    missing = engine.get("/v1/functions/no-such-fn/skips")
    assert missing.status_code == 404 and "GET /v1/functions" in missing.json()["hint"]
    bad = engine.get(f"/v1/functions/{slug}/skips", params={"limit": "many"})
    assert bad.status_code == 422 and "limit" in bad.json()["error"] and bad.json()["hint"]
    assert engine.get(f"/v1/functions/{slug}/skips", params={"limit": 0}).status_code == 422
    anonymous = httpx.get(f"{engine.url}/v1/functions/{slug}/skips", timeout=5)
    if engine.mode == "production":
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
        wrong = httpx.get(f"{engine.url}/v1/functions/{slug}/skips", timeout=5,
                          headers={"authorization": "Bearer signkey-prod-00"})
        assert wrong.status_code == 401
    else:
        assert anonymous.status_code == 200, "dev has no bearer, like the rest of /v1"
