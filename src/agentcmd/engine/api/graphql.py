"""``POST /v0/gql``: the GraphQL subset the SDK's test-suite reads (reference §8.4).

``run(runID){status output trace{childrenSpans{name outputID}}}``,
``runTrigger(runID){payloads}``, ``runTraceSpanOutputByID(outputID){data error}``
and ``event(query:{eventId}){functionRuns{id}}``; and ``run{waitingForApp{appID url since reason}}``
(REST's ``waiting_for_app``, ``since`` in RFC 3339) while a run waits for its app. Resolvers call
``store.queries``; outputs are JSON *strings*, as in the Go server. An
unknown run is a GraphQL error (clients poll until it exists).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine.api.guard import guard
from agentcmd.engine.protocol import iso_ms
from agentcmd.engine.store import queries
from agentcmd.errors import AgentcmdError
from agentcmd.httpedge import jsonbody

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands, Reads

SDL = """
enum FunctionRunStatus { QUEUED RUNNING COMPLETED FAILED CANCELLED SKIPPED }
type StepError { message: String! name: String stack: String }
type RunTraceSpan { name: String! status: String outputID: String childrenSpans: [RunTraceSpan!]! }
type RunTraceSpanOutput { data: String error: StepError }
type RunTraceTrigger { payloads: [String!]! }
type AppWait { appID: String! url: String! since: String! reason: String! }
type FunctionRun { id: ID! status: FunctionRunStatus output: String trace: RunTraceSpan waitingForApp: AppWait }
type Event { id: ID! name: String functionRuns: [FunctionRun!] }
input EventQuery { workspaceId: ID = "local" eventId: ID! }
type Query {
  run(runID: String!): FunctionRun
  runTrigger(runID: String!): RunTraceTrigger
  runTraceSpanOutputByID(outputID: String!): RunTraceSpanOutput
  event(query: EventQuery!): Event
}
"""


@cache
def _schema() -> Any:
    from graphql import build_schema

    return build_schema(SDL)


async def run(store: Reads, _: Any, info: Any, runID: str) -> dict[str, Any]:
    raw = await store.read(lambda c: queries.get_run_raw(c, runID))
    if raw is None:
        raise ValueError(f"run {runID} not found")
    status, output = raw
    steps = await store.read(lambda c: queries.run_steps(c, runID))
    spans = [{"name": s["name"], "status": s["status"], "outputID": s["output_id"], "childrenSpans": []}
             for s in steps]
    out: dict[str, Any] = {"id": runID, "status": status.upper(), "output": output,
                           "trace": {"name": "run", "status": status, "outputID": None, "childrenSpans": spans}}
    rest = await store.read(lambda c: queries.get_run(c, runID))
    wait = rest["waiting_for_app"] if rest else None
    out["waitingForApp"] = None if wait is None else {
        "appID": wait["app_id"], "url": wait["url"], "since": iso_ms(wait["since"]),
        "reason": wait["reason"]}
    return out


async def run_trigger(store: Reads, _: Any, info: Any, runID: str) -> dict[str, Any]:
    events = await store.read(lambda c: queries.run_trigger_events(c, runID))
    if events is None:
        raise ValueError(f"run {runID} not found")
    return {"payloads": [json.dumps(e) for e in events]}


async def span_output(store: Reads, _: Any, info: Any, outputID: str) -> dict[str, Any]:
    found = await store.read(lambda c: queries.step_output(c, outputID))
    if found is None:
        raise ValueError(f"output {outputID} not found")
    data, error = found
    if error is not None:
        err = error if isinstance(error, dict) else {"message": str(error)}
        return {"data": None, "error": {"message": str(err.get("message", "")), "name": err.get("name"),
                                        "stack": err.get("stack")}}
    return {"data": json.dumps(data), "error": None}


async def event(store: Reads, _: Any, info: Any, query: dict[str, Any]) -> dict[str, Any] | None:
    event_id = str(query["eventId"])
    ev = await store.read(lambda c: queries.get_event(c, event_id))
    if ev is None:
        return None
    runs = await store.read(lambda c: queries.event_runs(c, event_id))
    return {"id": event_id, "name": ev["name"],
            "functionRuns": [{"id": r["run_id"], "status": str(r["status"]).upper(),
                              "output": json.dumps(r["output"]), "trace": None} for r in runs]}


def _root(store: Reads) -> dict[str, Callable[..., Any]]:
    """The Query type's resolvers, each bound to the read access."""
    return {"run": partial(run, store), "runTrigger": partial(run_trigger, store),
            "runTraceSpanOutputByID": partial(span_output, store), "event": partial(event, store)}


def _read_request(raw: bytes) -> dict[str, Any] | None:
    """The body as ``{"query": str, "variables": dict?, "operationName": str?}``, or None if it is not."""
    try:
        body = jsonbody.loads(raw)
        query = body["query"]
        if not isinstance(query, str) or not isinstance(body.get("variables") or {}, dict) \
                or not isinstance(body.get("operationName") or "", str):
            raise TypeError("query must be a string, variables an object")
    except (AgentcmdError, KeyError, TypeError):
        return None
    return body  # type: ignore[no-any-return]


async def gql(commands: Commands, request: Request) -> Response:
    from graphql import graphql

    body = _read_request(await request.body())
    if body is None:
        return JSONResponse({"errors": [{"message": "body must be {\"query\": ..., \"variables\": ...}"}]}, 400)
    root = _root(commands)

    def resolver(source: Any, info: Any, **args: Any) -> Any:
        field = info.field_name
        if source is None and field in root:
            return root[field](source, info, **args)
        return source.get(field) if isinstance(source, dict) else getattr(source, field, None)

    result = await graphql(_schema(), body["query"], variable_values=body.get("variables"), field_resolver=resolver,
                           operation_name=body.get("operationName"))
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        out["errors"] = [{"message": e.message, "path": e.path} for e in result.errors]
    return JSONResponse(out)


def routes(commands: Commands) -> list[Route]:
    return [Route("/v0/gql", guard(commands, gql), methods=["POST"])]
