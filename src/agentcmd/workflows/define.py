"""``define_workflow``: an ``async def (ctx, step)`` becomes an Inngest function.

The result is a real ``inngest.Function`` (subclass ``Workflow``), so any
app serving it with the official SDK runs it: the agentcmd app server,
or ``inngest.fast_api.serve`` in your own app, against our engine,
``inngest dev``, ``inngest start`` or Inngest Cloud.

Everything that can be checked when the module is imported is checked
then (id, phases, trigger, durations, schema, workspace), so discovery can
report a bad workflow file with its line instead of failing a run later.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import inngest

# FunctionOpts is not exported by the SDK; Function's constructor needs it. pyproject pins inngest <0.6.
from inngest._internal.function import FunctionOpts
from pydantic import BaseModel

from agentcmd.errors import AgentcmdError
from agentcmd.errors import WorkflowDefinitionError as WorkflowDefinitionError  # its home before the tree
from agentcmd.workflows import notifyrule, schedules, triggers
from agentcmd.workflows import workspace as workspace_mod
from agentcmd.workflows.agentopts import check_workflow_source
from agentcmd.workflows.context import WorkflowContext, get_runtime
from agentcmd.workflows.costs import check_max_cost
from agentcmd.workflows.durations import parse_duration
from agentcmd.workflows.schema import InputSchema, SchemaDefinitionError
from agentcmd.workflows.spec import WorkflowSpec
from agentcmd.workflows.steps import WorkflowSteps

APP_ID = "agentcmd"
"""The SDK app id of the app server; function ids on the wire are ``agentcmd-<workflow id>``."""

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

WorkflowBody = Callable[[WorkflowContext, WorkflowSteps], Awaitable[Any]]
log = logging.getLogger("agentcmd.workflows")


def default_trigger(workflow_id: str) -> str:
    return f"agentcmd/workflow.{workflow_id}"


class Workflow(inngest.Function[Any]):
    """An Inngest function built from a workflow body, with its spec attached."""

    spec: WorkflowSpec
    body: WorkflowBody
    source: str | None

    def describe(self) -> dict[str, Any]:
        """The JSON the app API and ``agentcmd workflows list`` show."""
        s = self.spec
        return {"id": s.id, "name": s.name, "phases": list(s.phases), "trigger": s.trigger,
                "function_id": self.id, "description": s.description, "workspace": s.workspace,
                "retries": s.retries, "timeout": s.timeout, "max_cost_usd": s.max_cost_usd,
                "input_schema": s.input_schema.schema if s.input_schema else None, "source": self.source,
                "cron": list(s.cron), "timezone": s.timezone, "next_runs": schedules.next_runs(s.cron, s.timezone),
                "triggers": [t.describe() for t in s.triggers],
                "notify": s.notify.to_json() if s.notify is not None else None}

    def validate_input(self, data: Any) -> dict[str, Any]:
        """Check a run's input against ``args_schema`` (``InputError`` lists every problem)."""
        if self.spec.input_schema is not None:
            return self.spec.input_schema.validate(data, self.spec.id)
        if data is None:
            return {}
        if not isinstance(data, dict):
            from agentcmd.errors import InputError

            raise InputError(f"input for workflow {self.spec.id!r} must be a JSON object, "
                             f"got {type(data).__name__}", 'pass e.g. --input \'{"key": "value"}\'',
                             details=[{"path": "$", "message": "expected object"}])
        return data


def _jsonable(value: Any) -> Any:
    """Make a body's return value JSON: results and dataclasses become dicts, paths strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _check(workflow_id: str, phases: Sequence[str], trigger: str | None, retries: int | None,
           timeout: str | float | None, concurrency: int | None, workspace: str,
           cancel_on: Sequence[str] | None) -> None:
    def bad(what: str, fix: str) -> WorkflowDefinitionError:
        return WorkflowDefinitionError(f"workflow {workflow_id!r}: {what}", fix)

    if not isinstance(workflow_id, str) or not _ID.match(workflow_id):
        raise WorkflowDefinitionError(f"workflow id {workflow_id!r} is not valid",
                                      "use letters, digits, '.', '_' and '-' (e.g. \"fix-tests\")")
    if isinstance(phases, str) or not all(isinstance(p, str) and p.strip() for p in phases):
        raise bad(f"phases must be a list of non-empty names, got {phases!r}", 'e.g. phases=["plan", "fix"]')
    if len(set(phases)) != len(phases):
        raise bad(f"phases has duplicates: {list(phases)}", "name each phase once")
    if any("/" in p for p in phases):
        raise bad("phase names cannot contain '/'", "rename the phase")
    if trigger is not None and (not isinstance(trigger, str) or not trigger.strip()):
        raise bad(f"trigger must be an event name, got {trigger!r}", 'e.g. trigger="agentcmd/fix-tests"')
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)
                                or not 0 <= retries <= 20):
        raise bad(f"retries must be an integer from 0 to 20, got {retries!r}", "e.g. retries=2")
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                    or concurrency < 1):
        raise bad(f"concurrency must be a positive integer, got {concurrency!r}", "e.g. concurrency=1")
    if workspace not in workspace_mod.WORKSPACES:
        raise bad(f"workspace must be one of {', '.join(workspace_mod.WORKSPACES)}, got {workspace!r}",
                  'e.g. workspace="worktree"')
    for name in cancel_on or ():
        if not isinstance(name, str) or not name.strip():
            raise bad(f"cancel_on must be a list of event names, got {cancel_on!r}",
                      'e.g. cancel_on=["agentcmd/fix-tests.cancel"]')
    if timeout is not None:
        try:
            parse_duration(timeout, "timeout")
        except AgentcmdError as err:
            raise bad(err.what, 'e.g. timeout="30m"') from None


def define_workflow(
    id: str,
    name: str | None = None,
    *,
    phases: Sequence[str] = (),
    trigger: str | None = None,
    retries: int | None = None,
    timeout: str | float | None = None,
    concurrency: int | None = None,
    args_schema: dict[str, Any] | type[BaseModel] | None = None,
    workspace: str = "stay",
    cancel_on: Sequence[str] | None = None,
    description: str | None = None,
    max_cost_usd: float | None = None,
    cron: str | Sequence[str] | None = None,
    timezone: str | None = None,
    on: triggers.EventTrigger | Sequence[triggers.EventTrigger] | None = None,
    notify: notifyrule.NotifyArg = None,
) -> Callable[[WorkflowBody], Workflow]:
    """Decorate ``async def body(ctx, step)`` to make it a workflow.

    ``trigger`` defaults to ``agentcmd/workflow.<id>``; ``timeout`` bounds
    the whole run (Inngest ``timeouts.finish``); ``concurrency`` limits
    parallel runs; ``cancel_on`` lists events whose arrival cancels every
    running run of this workflow (the running command is stopped);
    ``max_cost_usd`` bounds what one run's agent steps may cost together
    (docs/workflows.md, "Tokens, cost and budgets"); ``cron`` (one
    expression or a list) also starts runs on a schedule, read in
    ``timezone`` (an IANA name; UTC when unset), while the event trigger
    still starts runs by hand; ``on`` (``on_event(...)`` or a list) starts
    runs for other events, e.g. webhooks', filtered and mapped to the input
    with CEL (``workflows/triggers.py``); ``notify`` (``{"events": [...],
    "targets": [...]}``, or False to silence) narrows which run events go to
    which of the settings' notification targets, like a
    ``notifications.workflows.<id>`` rule, which wins when both exist
    (``workflows/notifyrule.py``).
    """
    _check(id, phases, trigger, retries, timeout, concurrency, workspace, cancel_on)
    crons, zone = schedules.check(id, cron, timezone)
    try:
        max_cost = check_max_cost(max_cost_usd, "")
    except ValueError as err:
        raise WorkflowDefinitionError(f"workflow {id!r}: {str(err).strip()}", "e.g. max_cost_usd=5.0") from None
    try:
        schema = InputSchema(args_schema) if args_schema is not None else None
    except SchemaDefinitionError as err:
        raise WorkflowDefinitionError(f"workflow {id!r}: {err}",
                                      "fix args_schema (a JSON Schema dict or a pydantic model)") from None
    if crons and schema is not None:
        try:
            schema.validate({}, id)
        except AgentcmdError as err:
            raise WorkflowDefinitionError(f"workflow {id!r}: a scheduled run has an empty input, which args_schema "
                                          f"refuses ({err.what})", "make every input field optional") from None
    required = schema.schema.get("required", []) if schema is not None else []
    event_triggers = triggers.check(id, on, [f for f in required if isinstance(f, str)])
    notify_rule = notifyrule.check(id, notify)
    spec = WorkflowSpec(
        id=id, name=name or id, phases=tuple(phases), trigger=trigger or default_trigger(id),
        retries=retries, timeout=None if timeout is None else str(timeout), concurrency=concurrency,
        workspace=workspace, cancel_on=tuple(cancel_on or ()), description=description or "",
        input_schema=schema, max_cost_usd=max_cost, cron=crons, timezone=zone, triggers=event_triggers,
        notify=notify_rule,
    )

    def decorate(body: WorkflowBody) -> Workflow:
        if not inspect.iscoroutinefunction(body):
            raise WorkflowDefinitionError(f"workflow {id!r}: {getattr(body, '__name__', body)!r} must be "
                                          f"an 'async def' taking (ctx, step)", "write 'async def ...(ctx, step):'")
        if len(inspect.signature(body).parameters) != 2:
            raise WorkflowDefinitionError(f"workflow {id!r}: the body must take exactly (ctx, step)",
                                          f"write 'async def {body.__name__}(ctx, step):'")
        check_workflow_source(id, body)   # step.agent options the chosen CLI lacks fail the import
        return _build(spec, body)

    return decorate


def _build(spec: WorkflowSpec, body: WorkflowBody) -> Workflow:
    async def handler(ctx: inngest.Context) -> Any:
        return await _run_body(workflow, ctx)

    handler.__name__ = handler.__qualname__ = f"workflow_{spec.id.replace('-', '_').replace('.', '_')}"
    timeouts = inngest.Timeouts(finish=parse_duration(spec.timeout)) if spec.timeout else None
    workflow = Workflow(
        FunctionOpts(
            batch_events=None,
            cancel=[inngest.Cancel(event=e) for e in spec.cancel_on] or None,
            concurrency=[inngest.Concurrency(limit=spec.concurrency)] if spec.concurrency else None,
            debounce=None, fully_qualified_id=f"{APP_ID}-{spec.id}", idempotency=None, local_id=spec.id,
            name=spec.name, on_failure=None, priority=None, rate_limit=None, retries=spec.retries,
            throttle=None, timeouts=timeouts, singleton=None,
        ),
        [inngest.TriggerEvent(event=spec.trigger),
         *(inngest.TriggerEvent(event=t.event, expression=t.filter) for t in spec.triggers),
         *(inngest.TriggerCron(cron=c) for c in schedules.trigger_specs(spec.cron, spec.timezone))],
        handler,
    )
    workflow.spec = spec
    workflow.body = body
    module = inspect.getmodule(body)
    workflow.source = getattr(module, "__file__", None)
    return workflow


async def _run_body(workflow: Workflow, ctx: inngest.Context) -> Any:
    spec = workflow.spec
    runtime = get_runtime()
    # A cron tick's event carries the engine's timing ({"cron", "scheduledAt", ...}), not the user's input.
    data = {} if ctx.event.name == schedules.TIMER_EVENT else dict(ctx.event.data or {})
    if spec.triggers and ctx.event.name != spec.trigger:   # started by on_event(...): its input mapping
        try:
            mapped = triggers.input_for(spec.triggers, ctx.event.model_dump(mode="json"))
        except triggers.TriggerInputError as err:
            raise inngest.NonRetriableError(str(err)) from None
        data = data if mapped is None else mapped
    if spec.input_schema is not None:
        try:
            data = spec.input_schema.validate(data, spec.id)
        except AgentcmdError as err:
            raise inngest.NonRetriableError(err.what) from None
    wctx = WorkflowContext(
        workflow_id=spec.id, run_id=ctx.run_id, input=data, event=ctx.event.model_dump(mode="json"),
        attempt=ctx.attempt, project_dir=runtime.project_dir, workdir=runtime.project_dir,
        data_dir=runtime.data_dir, logger=ctx.logger,
    )
    wctx = await workspace_mod.prepare(spec.workspace, ctx.step, wctx)
    steps = WorkflowSteps(ctx.step, wctx, spec, runtime, group=ctx.group)
    try:
        result = await workflow.body(wctx, steps)
    except Exception as err:
        note = workspace_mod.kept_note(spec.workspace, wctx)
        if note is None:
            raise
        if isinstance(err, inngest.StepError):
            raise inngest.StepError(message=f"{err.message} ({note})", name=err.name, stack=err.stack) from err
        if isinstance(err, inngest.NonRetriableError):
            raise inngest.NonRetriableError(f"{err} ({note})") from err
        raise RuntimeError(f"{type(err).__name__}: {err} ({note})") from err
    await workspace_mod.finish(spec.workspace, ctx.step, wctx)
    return _jsonable(result)
