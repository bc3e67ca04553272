"""Reading an agent CLI's streaming output as it arrives: one parser per agent process.

Each CLI prints one JSON object per line in its streaming mode (claude
``-p --output-format stream-json --verbose``, codex ``exec --json``, gemini
``--output-format stream-json``). A ``StreamParser`` turns every line into the
normalized stream events every reader shares (docs/workflows.md, "Live agent
output"): ``session``, ``text``, ``tool_call``, ``tool_result``, ``error``,
``usage`` (running totals), ``result``. ``final()`` then gives what the step
returns: the answer text, its JSON, the session id, token totals, cost when the
CLI reports one, turns, and whether the agent reported an error.

Token counting is the same for all three: ``input_tokens`` counts every input
token, cached ones included; ``cached_tokens`` is the part read from a cache
(claude's ``cache_read_input_tokens``, codex's ``cached_input_tokens``,
gemini's ``cached``). Only claude reports a cost (``total_cost_usd``, at the end).

A line that is not JSON (a CLI's banner, a warning) becomes an ``output``
event; a JSON line of a type the parser does not know is kept only as raw.
Nothing here raises on bad input: a parser must survive whatever a newer CLI
version prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SUMMARY_LIMIT = 200
"""Characters of a tool call's one-line input summary."""

TEXT_LIMIT = 16_000
"""Characters of text kept in one event (tool output and long messages are cut with a marker)."""

RAW_LIMIT = 32_000
"""A raw CLI line longer than this is not kept whole in its event (only its type)."""


@dataclass
class Usage:
    """Running token totals of one agent process."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None
    turns: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cached_tokens": self.cached_tokens, "cost_usd": self.cost_usd, "turns": self.turns}


@dataclass
class FinalResult:
    """What the stream said once the process ended."""

    text: str = ""
    json: Any = None
    session_id: str | None = None
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    is_error: bool = False
    error: str | None = None
    has_result: bool = False
    events: int = 0
    tool_calls: int = 0


def _cut(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def summarize(tool: str, data: Any) -> str:
    """A short one-line summary of a tool call's input: its most telling field, else compact JSON."""
    if isinstance(data, dict):
        for key in ("command", "file_path", "path", "absolute_path", "pattern", "query", "url", "description",
                    "prompt", "dir_path"):
            value = data.get(key)
            if isinstance(value, list):
                value = " ".join(str(v) for v in value)
            if isinstance(value, str) and value.strip():
                text = value
                break
        else:
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":")) if data else ""
    elif isinstance(data, str):
        text = data
    else:
        text = "" if data is None else json.dumps(data, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LIMIT else text[:SUMMARY_LIMIT - 1] + "…"


def _content_text(content: Any) -> str:
    """A tool result's content: a string, or a list of text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [c.get("text", "") for c in content if isinstance(c, dict) and isinstance(c.get("text"), str)]
        return "\n".join(parts)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


class StreamParser:
    """Turns one agent process's stdout lines into normalized stream events; see the module docstring."""

    agent = ""

    def __init__(self) -> None:
        self.result = FinalResult()
        self._texts: list[str] = []
        self._tool_names: dict[str, str] = {}

    # Public ------------------------------------------------------------------
    def feed(self, line: str) -> list[dict[str, Any]]:
        """The events of one stdout line (possibly none)."""
        stripped = line.strip()
        if not stripped:
            return []
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            events = [self.event("output", text=_cut(stripped), stream="stdout")]
        else:
            try:
                events = self._handle(data)
            except Exception as err:  # a shape no version printed before: keep it, say so
                events = [self.event("notice", text=f"could not read a {self.agent} event: "
                                                    f"{type(err).__name__}: {err}")]
            if events:
                events[0]["raw"] = data if len(stripped) <= RAW_LIMIT else {"type": data.get("type"),
                                                                             "truncated": len(stripped)}
        self.result.events += len(events)
        return events

    def final(self) -> FinalResult:
        """The final result (call after the last line)."""
        if not self.result.text and self._texts:
            self.result.text = "\n".join(self._texts).strip()
        self.result.json = self._json_of(self.result.text) if self.result.json is None else self.result.json
        return self.result

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """A stream event of ``kind`` with every field of the shared shape present."""
        base: dict[str, Any] = {"agent": self.agent or None, "kind": kind, "text": None, "tool": None,
                                "tool_id": None, "summary": None, "status": None, "session_id": None,
                                "usage": None, "stream": None, "raw": None}
        base.update(fields)
        return base

    # Helpers for the CLIs ------------------------------------------------------
    def _handle(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    @staticmethod
    def _json_of(text: str) -> Any:
        t = text.strip()
        if t.startswith("```"):
            t = t.strip("`").removeprefix("json").strip()
        if not t or t[0] not in "[{":
            return None
        try:
            return json.loads(t)
        except ValueError:
            return None

    def _session(self, session: Any) -> list[dict[str, Any]]:
        if not isinstance(session, str) or not session or session == self.result.session_id:
            return []
        self.result.session_id = session
        return [self.event("session", session_id=session)]

    def _text(self, text: str) -> dict[str, Any]:
        self._texts.append(text)
        return self.event("text", text=_cut(text))

    def _tool_call(self, tool: str, tool_id: str | None, data: Any) -> dict[str, Any]:
        self.result.tool_calls += 1
        if tool_id:
            self._tool_names[tool_id] = tool
        return self.event("tool_call", tool=tool, tool_id=tool_id, summary=summarize(tool, data))

    def _tool_result(self, tool_id: str | None, ok: bool, output: str, tool: str | None = None) -> dict[str, Any]:
        name = tool or (self._tool_names.get(tool_id) if tool_id else None)
        return self.event("tool_result", tool=name, tool_id=tool_id, status="ok" if ok else "error",
                          text=_cut(output) if output else None)

    def _usage(self) -> dict[str, Any]:
        return self.event("usage", usage=self.result.usage.to_json())


class ClaudeParser(StreamParser):
    """``claude -p --output-format stream-json --verbose``: system/init, assistant, user, result lines."""

    agent = "claude"

    def __init__(self) -> None:
        super().__init__()
        self._message_usage: dict[str, dict[str, int]] = {}

    def _handle(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type")
        events = self._session(data.get("session_id"))
        if kind == "system":
            if data.get("subtype") == "init" and isinstance(data.get("model"), str):
                self.result.model = data["model"]
            error = data.get("error")
            if error:
                events.append(self.event("error", text=_cut(str(error if isinstance(error, str) else
                                                                 json.dumps(error)))))
            return events
        if kind == "assistant":
            message = _dict(data.get("message"))
            for block in message.get("content") or []:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"].strip():
                    events.append(self._text(block["text"]))
                elif block.get("type") == "tool_use":
                    events.append(self._tool_call(str(block.get("name") or "tool"), block.get("id"),
                                                  block.get("input")))
            if isinstance(message.get("usage"), dict) and self._add_usage(message.get("id"), message["usage"]):
                events.append(self._usage())
            return events
        if kind == "user":
            message = _dict(data.get("message"))
            content = message.get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    events.append(self._tool_result(block.get("tool_use_id"), block.get("is_error") is not True,
                                                    _content_text(block.get("content"))))
            return events
        if kind == "result":
            return events + self._result(data)
        return events

    def _add_usage(self, message_id: Any, usage: dict[str, Any]) -> bool:
        """Running totals: one usage per API message (claude repeats it on every block of a message)."""
        key = str(message_id or len(self._message_usage))
        entry = {"in": _int(usage.get("input_tokens")) + _int(usage.get("cache_creation_input_tokens"))
                 + _int(usage.get("cache_read_input_tokens")),
                 "cached": _int(usage.get("cache_read_input_tokens")), "out": _int(usage.get("output_tokens"))}
        if self._message_usage.get(key) == entry:
            return False
        self._message_usage[key] = entry
        total = self.result.usage
        total.input_tokens = sum(e["in"] for e in self._message_usage.values())
        total.cached_tokens = sum(e["cached"] for e in self._message_usage.values())
        total.output_tokens = sum(e["out"] for e in self._message_usage.values())
        total.turns = len(self._message_usage)
        return True

    def _result(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        res = self.result
        res.has_result = True
        usage = data.get("usage")
        if isinstance(usage, dict):
            res.usage.input_tokens = (_int(usage.get("input_tokens")) + _int(usage.get("cache_creation_input_tokens"))
                                      + _int(usage.get("cache_read_input_tokens")))
            res.usage.cached_tokens = _int(usage.get("cache_read_input_tokens"))
            res.usage.output_tokens = _int(usage.get("output_tokens"))
        cost = data.get("total_cost_usd", data.get("cost_usd"))
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            res.usage.cost_usd = float(cost)
        if _int(data.get("num_turns")):
            res.usage.turns = _int(data.get("num_turns"))
        text = data.get("result")
        subtype = str(data.get("subtype") or "")
        res.is_error = data.get("is_error") is True or subtype.startswith("error")
        if isinstance(text, str):
            res.text = text
        if res.is_error:
            res.error = (text if isinstance(text, str) and text else None) or subtype or "error"
        res.json = data
        return [self.event("result", text=_cut(res.error if res.is_error and res.error else res.text),
                           status="error" if res.is_error else "ok", session_id=res.session_id,
                           usage=res.usage.to_json())]


class CodexParser(StreamParser):
    """``codex exec --json``: thread.started, turn.*, item.started/updated/completed, error lines."""

    agent = "codex"

    def __init__(self) -> None:
        super().__init__()
        self._announced: set[str] = set()
        self._last_message = ""

    def _handle(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type")
        if kind == "thread.started":
            return self._session(data.get("thread_id"))
        if kind == "session.created":  # the first versions of --json
            return self._session(data.get("session_id"))
        if kind in ("item.started", "item.updated", "item.completed"):
            item = data.get("item")
            return self._item(item, done=kind == "item.completed") if isinstance(item, dict) else []
        if kind == "turn.completed":
            usage = _dict(data.get("usage"))
            total = self.result.usage
            total.input_tokens += _int(usage.get("input_tokens"))
            total.cached_tokens += _int(usage.get("cached_input_tokens"))
            total.output_tokens += _int(usage.get("output_tokens"))
            total.turns += 1
            self.result.has_result = True
            self.result.text = self._last_message.strip()   # codex's answer is its last agent message
            return [self.event("result", text=_cut(self.result.text), status="ok", session_id=self.result.session_id,
                               usage=total.to_json())]
        if kind == "turn.failed":
            error = data.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            self.result.is_error = True
            self.result.error = str(message or "turn failed")
            self.result.has_result = True
            return [self.event("result", text=_cut(self.result.error), status="error",
                               session_id=self.result.session_id, usage=self.result.usage.to_json())]
        if kind == "error":
            message = str(data.get("message") or "error")
            return [self.event("error", text=_cut(message))]
        return []

    def _item(self, item: dict[str, Any], *, done: bool) -> list[dict[str, Any]]:
        itype = item.get("type") or item.get("item_type")
        iid = str(item.get("id") or "")
        if itype == "agent_message":
            if not done or not isinstance(item.get("text"), str):
                return []
            self._last_message = item["text"]
            return [self._text(item["text"])]
        if itype == "reasoning":
            return []
        if itype == "error":
            return [self.event("error", text=_cut(str(item.get("message") or "error")))] if done else []
        tool, summary_of, output = self._tool_of(itype, item)
        if tool is None:
            return []
        events = []
        if iid not in self._announced:
            self._announced.add(iid)
            events.append(self._tool_call(tool, iid or None, summary_of))
        if done:
            status = item.get("status")
            exit_code = item.get("exit_code")
            ok = status not in ("failed", "declined") and (exit_code in (None, 0))
            events.append(self._tool_result(iid or None, ok, output, tool))
        return events

    @staticmethod
    def _tool_of(itype: Any, item: dict[str, Any]) -> tuple[str | None, Any, str]:
        if itype == "command_execution":
            return "shell", item.get("command"), str(item.get("aggregated_output") or "")
        if itype == "file_change":
            changes = _list(item.get("changes"))
            text = ", ".join(f"{c.get('kind', 'update')} {c.get('path', '')}" for c in changes if isinstance(c, dict))
            return "file_change", text, text
        if itype == "mcp_tool_call":
            name = f"{item.get('server', 'mcp')}.{item.get('tool', 'tool')}"
            result = item.get("result") if item.get("result") is not None else item.get("error")
            if isinstance(result, dict):
                result = result.get("content", result.get("message", result))
            return name, item.get("arguments"), "" if result is None else _content_text(result)
        if itype == "web_search":
            return "web_search", item.get("query"), ""
        if itype == "todo_list":
            items = _list(item.get("items"))
            text = "; ".join(("[x] " if i.get("completed") else "[ ] ") + str(i.get("text", ""))
                             for i in items if isinstance(i, dict))
            return "todo_list", text, text
        return None, None, ""

    def final(self) -> FinalResult:
        res = self.result
        if not res.text:
            res.text = self._last_message.strip()  # codex's answer is its last agent message
        if not res.has_result and res.usage.turns:
            res.has_result = True
        return super().final()


class GeminiParser(StreamParser):
    """``gemini --output-format stream-json``: init, message, tool_use, tool_result, error, result lines."""

    agent = "gemini"

    def __init__(self) -> None:
        super().__init__()
        self._assistant: list[str] = []
        self._in_message = False
        self._answer: list[str] = []

    def _handle(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type")
        if kind == "init":
            if isinstance(data.get("model"), str):
                self.result.model = data["model"]
            return self._session(data.get("session_id") or data.get("sessionId"))
        if kind == "message":
            if data.get("role") != "assistant" or not isinstance(data.get("content"), str):
                self._in_message = False
                return []
            if not self._in_message:
                self._in_message = True
                self.result.usage.turns += 1
                self._answer = []
            self._answer.append(data["content"])
            self._texts.append(data["content"])
            return [self.event("text", text=_cut(data["content"]))]
        self._in_message = False
        if kind == "tool_use":
            return [self._tool_call(str(data.get("tool_name") or "tool"), data.get("tool_id"),
                                    data.get("parameters"))]
        if kind == "tool_result":
            output = data.get("output")
            error = data.get("error")
            text = output if isinstance(output, str) and output else (
                error.get("message", "") if isinstance(error, dict) else "")
            return [self._tool_result(data.get("tool_id"), data.get("status") == "success", str(text or ""))]
        if kind == "error":
            return [self.event("error", text=_cut(str(data.get("message") or "error")))]
        if kind == "result":
            return self._result(data)
        return []

    def _result(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        res = self.result
        res.has_result = True
        stats = _dict(data.get("stats"))
        total = res.usage
        total.input_tokens = _int(stats.get("input_tokens", stats.get("prompt_tokens")))
        total.output_tokens = _int(stats.get("output_tokens", stats.get("candidates_tokens")))
        total.cached_tokens = _int(stats.get("cached", stats.get("cached_tokens")))
        total.turns = max(total.turns, 1)
        res.text = "".join(self._answer).strip()
        if data.get("status") not in (None, "success") or data.get("error"):
            error = data.get("error")
            res.is_error = True
            res.error = str((error.get("message") if isinstance(error, dict) else error) or data.get("status")
                            or "error")
        return [self.event("result", text=_cut(res.error if res.is_error and res.error else res.text),
                           status="error" if res.is_error else "ok", session_id=res.session_id,
                           usage=total.to_json())]


PARSERS: dict[str, type[StreamParser]] = {"claude": ClaudeParser, "codex": CodexParser, "gemini": GeminiParser}


def new_parser(agent: str) -> StreamParser:
    """The stream parser of ``agent``'s CLI."""
    return PARSERS[agent]()
