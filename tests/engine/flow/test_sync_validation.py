"""A bad expression in a function's declaration fails the app's sync with the function id and the parse error."""

from __future__ import annotations

import datetime
from typing import Any

import httpx
import inngest
import pytest

MINUTE = datetime.timedelta(seconds=60)
BAD = [
    ("concurrency", {"concurrency": [inngest.Concurrency(limit=1, key="event.data.")]}, "concurrency[0].key"),
    ("throttle", {"throttle": inngest.Throttle(limit=1, period=MINUTE, key="event.data.t +")}, "throttle.key"),
    ("rate-limit", {"rate_limit": inngest.RateLimit(limit=1, period=MINUTE, key="((")}, "rateLimit.key"),
    ("priority", {"priority": inngest.Priority(run="event.data.p ?")}, "priority.run"),
    ("cancel-if", {"cancel": [inngest.Cancel(event="x/stop", if_exp="async.data.id ==")]}, "cancel[0].if"),
    ("trigger", {"trigger": inngest.TriggerEvent(event="x/go", expression="event.data.x ==")}, "trigger expression"),
]


@pytest.mark.parametrize(("name", "options", "field"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_expression_fails_the_sync(name: str, options: dict[str, Any], field: str, module_engine: Any,
                                         sdk_factory: Any, client_for: Any) -> None:
    engine = module_engine
    app_id = f"bad-{name}-{engine.mode}"
    client = client_for(engine, app_id=app_id)

    options = {"trigger": inngest.TriggerEvent(event="x/go"), **options}

    @client.create_function(fn_id="broken", **options)
    async def broken(ctx: inngest.Context) -> None:
        return None

    app = sdk_factory(engine, client, [broken], sync=False)
    headers = {"X-Inngest-Server-Kind": "cloud" if engine.mode == "production" else "dev"}
    answer = httpx.put(app.url, json={"url": app.url}, headers=headers, timeout=10)
    assert answer.status_code >= 400 or "error" in answer.text, answer.text
    apps = {a["id"]: a for a in engine.get("/v1/apps").json()["data"]}
    record = apps[app_id]
    error = str(record.get("error"))
    assert f"{app_id}-broken" in error and field in error, record
    functions = [f for f in engine.get("/v1/functions").json()["data"] if app_id in str(f)]
    assert functions == [], "nothing of a failed sync is registered"


def test_a_good_sync_after_a_failed_one_clears_the_error(module_engine: Any, sdk_factory: Any,
                                                         client_for: Any) -> None:
    engine = module_engine
    app_id = f"fixed-{engine.mode}"
    bad_client = client_for(engine, app_id=app_id)

    @bad_client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="x/go"),
                                priority=inngest.Priority(run="1 +"))
    async def bad(ctx: inngest.Context) -> None:
        return None

    headers = {"X-Inngest-Server-Kind": "cloud" if engine.mode == "production" else "dev"}
    app = sdk_factory(engine, bad_client, [bad], sync=False)
    httpx.put(app.url, json={"url": app.url}, headers=headers, timeout=10)
    good_client = client_for(engine, app_id=app_id)

    @good_client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="x/go"),
                                 priority=inngest.Priority(run="1 + 1"))
    async def good(ctx: inngest.Context) -> None:
        return None

    sdk_factory(engine, good_client, [good])
    apps = {a["id"]: a for a in engine.get("/v1/apps").json()["data"]}
    assert not apps[app_id].get("error"), apps[app_id]
