"""Event triggers of a workflow: ``on_event(name, filter=CEL, input={field: CEL})``.

A workflow started by the world (a GitHub webhook's ``github/issues``
event, a Linear ``linear/issue``, any ``webhook/<name>``) rarely wants the
whole payload as its input: it wants a few fields, and only for some
deliveries. So a trigger has

* ``filter``: a CEL expression over ``event`` that becomes the Inngest
  trigger's ``expression``: the engine evaluates it when the event
  arrives, so a delivery that does not match starts no run at all;
* ``input``: ``{field: CEL expression over event}``, evaluated by the
  workflow wrapper (``define._run_body``) to build ``ctx.input``, which is
  then validated against ``args_schema`` like any other input. Without
  ``input``, the input is the event's data, as for the manual trigger.

Both are compiled when the workflow file is imported (with cel-python, the
library the embedded engine evaluates with), so a typo is a
``WorkflowDefinitionError`` naming the trigger, not a run that never starts.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from agentcmd.errors import WorkflowDefinitionError

EXAMPLE = ('e.g. on=on_event("github/issues", filter="event.data.action == \'labeled\'", '
           'input={"title": "event.data.issue.title"})')


class TriggerInputError(Exception):
    """A mapping expression failed on this event (a missing field...): the run fails, without retries."""


@dataclasses.dataclass(frozen=True)
class EventTrigger:
    """One event trigger: the event name (``*`` wildcards allowed), its CEL filter and input mapping."""

    event: str
    filter: str | None = None
    input: tuple[tuple[str, str], ...] | None = None

    def describe(self) -> dict[str, Any]:
        return {"event": self.event, "filter": self.filter,
                "input": dict(self.input) if self.input is not None else None}

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Is ``event`` one this trigger starts runs for (name and filter, as the engine decides)?"""
        name = str(event.get("name", ""))
        if not (self.event == name or ("*" in self.event and fnmatch.fnmatchcase(name, self.event))):
            return False
        if not self.filter:
            return True
        try:
            return bool(_json(_evaluate(self.filter, event)))
        except TriggerInputError:
            return False

    def build_input(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """``ctx.input`` for a run this trigger started (before ``args_schema`` validation)."""
        if self.input is None:
            data = event.get("data")
            return dict(data) if isinstance(data, Mapping) else {}
        out: dict[str, Any] = {}
        for field, expression in self.input:
            try:
                out[field] = _json(_evaluate(expression, event))
            except TriggerInputError as err:
                raise TriggerInputError(f"input field {field!r} ({expression}) failed on event "
                                        f"{event.get('name')!r}: {err}") from None
        return out


def on_event(name: str, filter: str | None = None, input: Mapping[str, str] | None = None) -> EventTrigger:
    """A trigger for ``define_workflow(on=...)``: start a run for each ``name`` event ``filter`` accepts.

    ``filter`` is CEL over ``event`` (``event.data.action == 'labeled'``);
    ``input`` maps each input field to a CEL expression over ``event``.
    Raises ``WorkflowDefinitionError`` for a bad name or an expression that
    does not compile.
    """
    where = f"on_event({name!r})"
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise WorkflowDefinitionError(f"on_event: the event name must be a non-empty string, got {name!r}", EXAMPLE)
    if name.startswith("inngest/"):
        raise WorkflowDefinitionError(f"{where}: names starting with 'inngest/' are the engine's own",
                                      "use cron= for schedules; trigger on your own or a webhook's events")
    if filter is not None:
        if not isinstance(filter, str) or not filter.strip():
            raise WorkflowDefinitionError(f"{where}: filter must be a CEL expression, got {filter!r}", EXAMPLE)
        _compile_or_raise(filter.strip(), f"{where}: filter")
    mapping: tuple[tuple[str, str], ...] | None = None
    if input is not None:
        if not isinstance(input, Mapping):
            raise WorkflowDefinitionError(f"{where}: input must be a dict of field -> CEL expression, "
                                          f"got {type(input).__name__}", EXAMPLE)
        pairs = []
        for field, expression in input.items():
            if not isinstance(field, str) or not field:
                raise WorkflowDefinitionError(f"{where}: input field names must be non-empty strings, got {field!r}",
                                              EXAMPLE)
            if not isinstance(expression, str) or not expression.strip():
                raise WorkflowDefinitionError(f"{where}: input[{field!r}] must be a CEL expression (a string), "
                                              f"got {expression!r}", 'e.g. "event.data.issue.title"')
            _compile_or_raise(expression.strip(), f"{where}: input[{field!r}]")
            pairs.append((field, expression.strip()))
        mapping = tuple(pairs)
    return EventTrigger(name, filter.strip() if filter else None, mapping)


def check(workflow_id: str, on: EventTrigger | Sequence[EventTrigger] | None,
          required: Sequence[str] = ()) -> tuple[EventTrigger, ...]:
    """``define_workflow``'s ``on=``: one trigger or a list, each mapping covering ``required`` input fields."""
    if on is None:
        return ()
    items = [on] if isinstance(on, EventTrigger) else list(on) if isinstance(on, Sequence) and \
        not isinstance(on, str) else None
    if not items or not all(isinstance(t, EventTrigger) for t in items):
        raise WorkflowDefinitionError(f"workflow {workflow_id!r}: on= takes on_event(...) or a list of them, "
                                      f"got {on!r}", EXAMPLE)
    seen: set[tuple[str, str | None]] = set()
    for trigger in items:
        key = (trigger.event, trigger.filter)
        if key in seen:
            raise WorkflowDefinitionError(f"workflow {workflow_id!r}: the trigger on {trigger.event!r} with this "
                                          "filter is listed twice", "list each trigger once")
        seen.add(key)
        if trigger.input is not None:
            missing = [f for f in required if f not in dict(trigger.input)]
            if missing:
                raise WorkflowDefinitionError(
                    f"workflow {workflow_id!r}: the input mapping of on_event({trigger.event!r}) leaves the required "
                    f"input field(s) {', '.join(missing)} unset", "map each required field of args_schema")
    return tuple(items)


def input_for(triggers: Sequence[EventTrigger], event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The input of a run started by ``event``: the first matching trigger's mapping; None if none matches."""
    for trigger in triggers:
        if trigger.matches(event):
            return trigger.build_input(event)
    return None


@lru_cache(maxsize=512)
def _program(expression: str) -> Any:
    import celpy

    env = celpy.Environment()
    return env.program(env.compile(expression))


def _compile_or_raise(expression: str, where: str) -> None:
    try:
        _program(expression)
    except Exception as exc:  # celpy raises its parser's and lark's own types
        lines = str(exc).rstrip().splitlines()
        caret = next((line.index("^") for line in lines[1:] if line.strip() == "^"), None)
        detail = f"syntax error at column {caret + 1}" if caret is not None else \
            (lines[0].strip() if lines else type(exc).__name__)
        raise WorkflowDefinitionError(f"{where}: {expression!r} is not a valid CEL expression ({detail})",
                                      "CEL over event, e.g. event.data.action == 'labeled' && "
                                      "event.data.label.name == 'agent'") from None


def _evaluate(expression: str, event: Mapping[str, Any]) -> Any:
    import celpy

    try:
        result = _program(expression).evaluate({"event": celpy.json_to_cel(dict(event))})  # type: ignore[attr-defined]
    except Exception as exc:  # celpy raises many unrelated types
        raise TriggerInputError(_cel_message(exc)) from None
    if isinstance(result, Exception):
        raise TriggerInputError(_cel_message(result))
    return result


def _cel_message(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    return str(args[0]) if args and isinstance(args[0], str) else str(exc)


def _json(value: Any) -> Any:
    """A CEL value as plain JSON (celpy's types subclass bool/int/float/str/list/dict, or are durations...)."""
    from celpy import celtypes

    if value is None or isinstance(value, celtypes.NullType):
        return None
    if isinstance(value, celtypes.BoolType | bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(_json(k)): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return str(value)   # timestamps, durations: their text
