"""Starting a run: an accepted start answers with the run, or with an error saying why not.

``POST /api/workflows/{id}/runs`` sends the workflow's trigger event, and
the engine creates the run when it matches the event to the app's function.
If the engine has not synced the app yet (right after a start, or after it
lost its store), it accepts the event and starts nothing: answering 202
without a run would drop the user's request in silence. So:

1. send the event and wait for the engine to report the run of that event
   id (``GET /v1/events/{id}/runs``), normally a few milliseconds;
2. no run after ``FIRST_WAIT_SECONDS``: ask the engine why (``GET
   /v1/functions``). Function paused: 409 ``workflow_paused``. Function
   unknown, or registered with another trigger: sync the app with the
   engine (the SDK's own out-of-band sync: POST ``/fn/register`` with the
   function configs, signed in production), wait a moment for the first
   event's run (an engine that matches events received during a sync
   starts it now), else send the event again and wait for that run;
3. still no run when ``TOTAL_WAIT_SECONDS`` have passed: 503
   ``run_not_started`` naming the event id. An unreachable engine is 503
   ``unavailable`` with a hint, at any point.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import inngest
from inngest._internal import comm_lib
from inngest.fast_api import FRAMEWORK
from starlette.requests import Request

from agentcmd.errors import AgentcmdError, NotFoundError, UnavailableError
from agentcmd.server import SERVE_PATH
from agentcmd.server.engine import EngineRestClient
from agentcmd.workflows.define import APP_ID, Workflow

FIRST_WAIT_SECONDS = 3.0
"""How long the engine gets to create the run before the app asks why it did not."""
RESYNC_WAIT_SECONDS = 1.5
"""After a sync: how long to wait for the first event's run before sending the event again."""
TOTAL_WAIT_SECONDS = 20.0
"""The most a start request waits for its run (a loaded engine can be slow, never this slow);
below the CLI's 30 s request timeout, so the CLI sees the app's error, not its own timeout."""

_HINT_ENGINE = "check that the engine is running ('agentcmd dev' / 'agentcmd start') and see its log"


class RunNotStartedError(AgentcmdError):
    """The event was sent but the engine did not make a run of it in time."""

    code = "run_not_started"
    exit_code = 1
    http_status = 503
    fix_hint = _HINT_ENGINE


class WorkflowPausedError(AgentcmdError):
    """The workflow is paused on the engine, so a new run would not start."""

    code = "workflow_paused"
    exit_code = 1
    http_status = 409
    fix_hint = "unpause it ('agentcmd functions unpause' or the dashboard), then start the run again"


async def wait_for_run(engine: EngineRestClient, event_id: str, seconds: float) -> str | None:
    """The id of the run the engine started for ``event_id``, or None after ``seconds``."""
    deadline = time.monotonic() + max(0.0, seconds)
    delay = 0.01
    while True:
        try:
            runs = await engine.event_runs(event_id)
        except NotFoundError:
            runs = []  # the engine has not stored the event yet
        run_id = next((r.get("run_id") for r in runs if r.get("run_id")), None)
        if run_id:
            return str(run_id)
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.2)


async def function_state(engine: EngineRestClient, wf: Workflow) -> str | None:
    """``known``, ``paused``, ``stale`` (another trigger), ``unknown``, or None when the engine cannot list."""
    try:
        functions = await engine.list_functions()
    except NotFoundError:
        return None
    slug = f"{APP_ID}-{wf.spec.id}"
    for fn in functions:
        if slug not in (fn.get("slug"), fn.get("id")):
            continue
        if fn.get("paused"):
            return "paused"
        triggers = (fn.get("config") or {}).get("triggers") or []
        events = {t.get("event") for t in triggers if isinstance(t, dict)}
        return "known" if not events or wf.spec.trigger in events else "stale"
    return "unknown"


def serve_url(request: Request) -> str:
    """Where the engine reaches this app: the local address the request came in on, plus the SDK path.

    ``INNGEST_SERVE_ORIGIN`` (the SDK reads it) overrides the origin, as for any sync.
    """
    server = request.scope.get("server")
    if server and server[0]:
        host = str(server[0])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{server[1]}{SERVE_PATH}"
    return str(request.base_url).rstrip("/") + SERVE_PATH


async def sync_app(client: inngest.Inngest, functions: list[Any], url: str) -> None:
    """Register the app's functions with the engine, exactly as the SDK's sync (PUT) does."""
    handler = comm_lib.CommHandler(client=client, enable_unauthed_sync=True, framework=FRAMEWORK,
                                   functions=functions, streaming=None)
    req = comm_lib.CommRequest(body=b"", headers={}, public_path=None, query_params={}, raw_request=None,
                               request_url=url, serve_origin=None, serve_path=None)
    res = await handler.put(req)
    body = res.body if isinstance(res.body, dict) else {}
    # The SDK answers 200 even when the engine refused (it only logs): read the engine's own answer.
    if res.status_code >= 400 or (body.get("ok") is not True and ("error" in body or "detail" in body)):
        detail = body.get("error") or body.get("detail") or res.body
        raise UnavailableError(f"the engine refused to sync the app ({res.status_code}): {detail}",
                               "see the engine's log; in production both must use the same signing key",
                               code="sync_failed")


def _no_connect_sync(wf: Workflow) -> None:
    """Connect mode: only a connected worker can make the engine know a workflow (server/connectworker.py)."""
    from agentcmd.server.connectmode import workers_serve_workflows

    if workers_serve_workflows():
        raise UnavailableError(f"no connected worker serves workflow {wf.spec.id!r} (worker mode connect)",
                               "start one with 'agentcmd worker' (agentcmd dev|start run one), or wait for the "
                               "worker to reconnect after a reload", code="no_worker")


async def start_run(request: Request, wf: Workflow, data: dict[str, Any],
                    send: Any) -> dict[str, Any]:
    """Send ``wf``'s trigger with ``data`` and return ``{"event_id", "run_id", "resynced"}``.

    ``send(name, data) -> [event ids]`` is the API's event sender (it raises 503 when the
    engine is unreachable).
    """
    engine: EngineRestClient = request.app.state.engine
    started = time.monotonic()
    event_id = (await send(wf.spec.trigger, data))[0]
    run_id = await wait_for_run(engine, event_id, FIRST_WAIT_SECONDS)
    resynced = False
    if run_id is None:
        state = await function_state(engine, wf)
        if state == "paused":
            raise WorkflowPausedError(
                f"workflow {wf.spec.id!r} is paused on the engine: event {event_id} was recorded but starts no run",
                "resume the function on the engine dashboard, then start the run again")
        if state != "known":
            _no_connect_sync(wf)
            functions = list(request.app.state.discovered.workflows.values())
            await sync_app(request.app.state.client, functions, serve_url(request))
            resynced = True
            if state is not None and await function_state(engine, wf) not in ("known", None):
                raise UnavailableError(f"the engine did not take workflow {wf.spec.id!r} from the app's sync",
                                       "see the engine's log ('agentcmd functions list' shows what it serves)",
                                       code="sync_failed")
            run_id = await wait_for_run(engine, event_id, RESYNC_WAIT_SECONDS)
            if run_id is None:
                event_id = (await send(wf.spec.trigger, data))[0]
        if run_id is None:
            run_id = await wait_for_run(engine, event_id, TOTAL_WAIT_SECONDS - (time.monotonic() - started))
    if run_id is None:
        raise RunNotStartedError(
            f"the engine accepted event {event_id} but started no run of workflow {wf.spec.id!r} within "
            f"{TOTAL_WAIT_SECONDS:g} s", _HINT_ENGINE + "; 'agentcmd functions list' shows what it serves")
    return {"event_id": event_id, "run_id": run_id, "resynced": resynced}
