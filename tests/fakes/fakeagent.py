"""Fake ``claude``, ``codex`` and ``gemini`` CLIs that speak each CLI's real output formats.

The real CLIs cannot be installed where the tests run, so ``tests/fakes/bin/<name>``
(three tiny scripts calling ``main(name)`` here) stand in for them. Use the
``fake_agents`` fixture (``tests/harness/fakeagents.py``) to put them first on PATH.

Output modes, chosen by the argv like the real CLIs:

- streaming (claude ``-p --output-format stream-json --verbose``, codex ``exec --json``,
  gemini ``--output-format stream-json``): one JSON event per line, in the recorded shapes of
  each CLI (claude system/init, assistant, user, result; codex thread.started, turn.started,
  item.started/item.completed, turn.completed/turn.failed; gemini init, message, tool_use,
  tool_result, error, result);
- otherwise the old one-shot output (claude ``--output-format json``: one result object; codex
  and gemini: the answer as plain text).

Environment:

- ``FAKE_AGENT_LOG``: append one JSON line per call: ``{"agent", "argv" (without argv[0]),
  "stdin" (text or null), "cwd", "pid", "prompt", "streaming", "resume"}``;
- ``FAKE_AGENT_SCENARIO``: a built-in name (``normal`` (default), ``error``, ``slow``, ``fail``,
  ``hang``, ``many``) or the path of a JSON file with a scenario (below);
- ``FAKE_AGENT_DELAY``: seconds between events (default 0; ``slow`` uses 0.3);
- ``FAKE_AGENT_HOLD``: a path; after the scenario's steps, before the final result, wait until
  that file exists (lets a test look at the stream while the process still runs, without sleeps);
- ``FAKE_AGENT_NO_STREAM=1``: act like an old version that rejects the streaming flag (exit
  quickly, non-zero, with the CLI's own "unknown option" style message on stderr).

A scenario (JSON object; every key optional)::

    {"session_id": "sess-1", "model": "claude-sonnet-4-5",
     "steps": [{"text": "Looking at the tests"},
               {"tool": "Bash", "input": {"command": "pytest -q"}, "output": "1 failed", "is_error": false},
               {"error": "rate limited, retrying"},       # a non-fatal error event
               {"sleep": 0.2},                            # a pause
               {"hold": "/path/file"}],                   # wait for a file to exist
     "many": 0,                          # N more text events "event i" (load tests)
     "result": "Done.",                  # final text (default "answer to: <prompt>")
     "is_error": false, "error": "...",  # an error result (claude result subtype error_during_execution,
                                         # codex turn.failed, gemini result status error)
     "usage": {"input_tokens": 1200, "output_tokens": 300, "cached_tokens": 800, "cost_usd": 0.0123},
     "turns": 2, "exit_code": 0, "stderr": "text written to stderr",
     "raw": ["line", ...]}               # exact stdout lines instead of the rendered stream

``@SEND_TS@`` anywhere in a line is replaced by the epoch time the line is written (the streaming
benchmark measures the delay from there to a reader).

Usage numbers are totals; the fake spreads them over its assistant messages so running totals
grow while it streams. Cached tokens are part of the input tokens (as codex and gemini count
them; claude reports them apart and the fake splits them the same way).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

BUILTIN: dict[str, dict[str, Any]] = {
    "normal": {
        "steps": [
            {"text": "I'll look at the failing test first."},
            {"tool": "Bash", "input": {"command": "pytest -q tests/test_x.py", "description": "Run the test"},
             "output": "1 failed, 3 passed", "is_error": False},
            {"text": "The assertion compares against the old value; fixing it."},
            {"tool": "Edit", "input": {"file_path": "src/x.py", "old_string": "a = 1", "new_string": "a = 2"},
             "output": "The file src/x.py has been updated.", "is_error": False},
        ],
        "usage": {"input_tokens": 1200, "output_tokens": 300, "cached_tokens": 800, "cost_usd": 0.0123},
        "turns": 3,
    },
    "error": {
        "steps": [{"text": "Starting."},
                  {"tool": "Bash", "input": {"command": "make"}, "output": "make: *** No rule", "is_error": True}],
        "is_error": True, "error": "the model quota is exhausted", "exit_code": 1,
        "usage": {"input_tokens": 100, "output_tokens": 20, "cached_tokens": 0, "cost_usd": 0.001},
        "turns": 1,
    },
    "fail": {"raw": [], "stderr": "fatal: not logged in\n", "exit_code": 3},
    "hang": {"steps": [{"text": "Thinking."}, {"sleep": 3600}]},
}
BUILTIN["slow"] = {**BUILTIN["normal"], "delay": 0.3}
BUILTIN["many"] = {**BUILTIN["normal"], "many": 200}

CLAUDE_MODEL = "claude-sonnet-4-5-20250929"
SEND_TS = "@SEND_TS@"
"""In any text of a scenario, replaced by the epoch time the line is written (benchmarks/stream_bench.py)."""


def _load_scenario() -> dict[str, Any]:
    name = os.environ.get("FAKE_AGENT_SCENARIO") or "normal"
    if name in BUILTIN:
        return dict(BUILTIN[name])
    data = json.loads(Path(name).read_text())
    if not isinstance(data, dict):
        raise SystemExit(f"fake agent: scenario {name} is not a JSON object")
    return data


def _value(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--":
            return None
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1:]
    return None


def _options(argv: list[str]) -> list[str]:
    return argv[:argv.index("--")] if "--" in argv else argv


def _streaming(agent: str, argv: list[str]) -> tuple[bool, str | None]:
    """(streaming asked for, the flag an old version would reject)."""
    opts = _options(argv)
    if agent == "claude":
        fmt = _value(argv, "--output-format")
        return fmt == "stream-json", "--output-format" if fmt == "stream-json" else None
    if agent == "codex":
        return "--json" in opts, "--json"
    fmt = _value(argv, "--output-format", "-o")
    return fmt == "stream-json", "--output-format"


def _prompt_and_resume(agent: str, argv: list[str], stdin: str | None) -> tuple[str, str | None]:
    if agent == "claude":
        prompt = argv[argv.index("--") + 1] if "--" in argv else (stdin or "")
        return prompt, _value(argv, "--resume", "-r")
    if agent == "codex":
        rest = argv[argv.index("--") + 1:] if "--" in argv else []
        opts = _options(argv)
        resume = opts[opts.index("resume") + 1] if "resume" in opts and opts.index("resume") + 1 < len(opts) else None
        prompt = rest[0] if rest else (stdin or "")
        return prompt, resume
    prompt = _value([a for a in argv if a != "--"], "--prompt", "-p") or ""
    return prompt, _value(argv, "--resume", "-r")


def _reject(agent: str, flag: str) -> None:
    if agent == "claude":
        sys.stderr.write(f"error: unknown option '{flag}'\n")
        sys.exit(1)
    if agent == "codex":
        sys.stderr.write(f"error: unexpected argument '{flag}' found\n\n  tip: to pass '{flag}' as a value, "
                         f"use '-- {flag}'\n\nUsage: codex exec [OPTIONS] [PROMPT]\n\nFor more information, "
                         "try '--help'.\n")
        sys.exit(2)
    sys.stderr.write('Invalid values:\n  Argument: output-format, Given: "stream-json", Choices: "text", "json"\n')
    sys.exit(1)


class Emitter:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.first = True

    def __call__(self, obj: Any) -> None:
        if not self.first and self.delay:
            time.sleep(self.delay)
        self.first = False
        line = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
        line = line.replace(SEND_TS, f"{time.time():.6f}")   # benchmarks: when the line left the agent
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _wait_file(path: str) -> None:
    deadline = time.monotonic() + 300
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)


def _expand(scn: dict[str, Any]) -> list[dict[str, Any]]:
    steps = list(scn.get("steps") or [])
    steps += [{"text": f"event {i}"} for i in range(int(scn.get("many") or 0))]
    return steps


def _shares(total: int, parts: int) -> list[int]:
    parts = max(parts, 1)
    base = [total // parts] * parts
    base[-1] += total - sum(base)
    return base


def _pace(step: dict[str, Any]) -> bool:
    """Handle sleep/hold steps; True when the step was one."""
    if "sleep" in step:
        time.sleep(float(step["sleep"]))
        return True
    if "hold" in step:
        _wait_file(str(step["hold"]))
        return True
    return False


def play_claude(scn: dict[str, Any], emit: Emitter, session: str, prompt: str) -> None:
    usage = scn.get("usage") or {}
    steps = _expand(scn)
    talk = [s for s in steps if "text" in s or "tool" in s] or [{}]
    cached = int(usage.get("cached_tokens", 0))
    fresh_in = _shares(max(int(usage.get("input_tokens", 0)) - cached, 0), len(talk))
    cache_in = _shares(cached, len(talk))
    out = _shares(int(usage.get("output_tokens", 0)), len(talk))
    model = scn.get("model") or CLAUDE_MODEL
    emit({"type": "system", "subtype": "init", "cwd": os.getcwd(), "session_id": session,
          "tools": ["Bash", "Edit", "Read", "Write", "Glob", "Grep"], "mcp_servers": [], "model": model,
          "permissionMode": "default", "apiKeySource": "none", "output_style": "default",
          "uuid": str(uuid.uuid4())})
    n = 0
    for step in steps:
        if _pace(step):
            continue
        if "error" in step and "text" not in step and "tool" not in step:
            emit({"type": "system", "subtype": "api_error", "session_id": session, "error": step["error"],
                  "uuid": str(uuid.uuid4())})
            continue
        msg_usage = {"input_tokens": fresh_in[n], "cache_creation_input_tokens": 0,
                     "cache_read_input_tokens": cache_in[n], "output_tokens": out[n], "service_tier": "standard"}
        n = min(n + 1, len(talk) - 1)
        tool_id = "toolu_" + uuid.uuid4().hex[:24]
        block: dict[str, Any] = ({"type": "text", "text": step["text"]} if "text" in step else
                                 {"type": "tool_use", "id": tool_id, "name": step["tool"],
                                  "input": step.get("input") or {}})
        emit({"type": "assistant", "message": {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message",
                                               "role": "assistant", "model": model, "content": [block],
                                               "stop_reason": None, "stop_sequence": None, "usage": msg_usage},
              "parent_tool_use_id": None, "session_id": session, "uuid": str(uuid.uuid4())})
        if "tool" in step:
            emit({"type": "user", "message": {"role": "user", "content": [
                {"tool_use_id": tool_id, "type": "tool_result", "content": step.get("output", ""),
                 "is_error": bool(step.get("is_error"))}]},
                  "parent_tool_use_id": None, "session_id": session, "uuid": str(uuid.uuid4())})
    _hold()
    is_error = bool(scn.get("is_error"))
    result = scn.get("error", "error") if is_error else scn.get("result", "answer to: " + prompt)
    emit({"type": "result", "subtype": "error_during_execution" if is_error else "success", "is_error": is_error,
          "duration_ms": 1234, "duration_api_ms": 1100, "num_turns": int(scn.get("turns", 1)),
          "result": result, "session_id": session, "total_cost_usd": usage.get("cost_usd", 0.0),
          "usage": {"input_tokens": sum(fresh_in), "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": cached, "output_tokens": sum(out),
                    "server_tool_use": {"web_search_requests": 0}, "service_tier": "standard"},
          "permission_denials": [], "uuid": str(uuid.uuid4())})


def play_codex(scn: dict[str, Any], emit: Emitter, session: str, prompt: str) -> None:
    usage = scn.get("usage") or {}
    emit({"type": "thread.started", "thread_id": session})
    emit({"type": "turn.started"})
    item = 0
    for step in _expand(scn):
        if _pace(step):
            continue
        iid = f"item_{item}"
        item += 1
        if "text" in step:
            emit({"type": "item.completed", "item": {"id": iid, "type": "reasoning", "text": "**Planning**"}})
            iid = f"item_{item}"
            item += 1
            emit({"type": "item.completed", "item": {"id": iid, "type": "agent_message", "text": step["text"]}})
        elif "tool" in step:
            inp = step.get("input") or {}
            if step["tool"] in ("Edit", "Write", "file_change"):
                path = inp.get("file_path") or inp.get("path") or "file"
                emit({"type": "item.completed", "item": {
                    "id": iid, "type": "file_change", "changes": [{"path": path, "kind": "update"}],
                    "status": "failed" if step.get("is_error") else "completed"}})
                continue
            command = inp.get("command") or json.dumps(inp)
            emit({"type": "item.started", "item": {"id": iid, "type": "command_execution",
                                                   "command": f"bash -lc {command!r}", "aggregated_output": "",
                                                   "exit_code": None, "status": "in_progress"}})
            emit({"type": "item.completed", "item": {
                "id": iid, "type": "command_execution", "command": f"bash -lc {command!r}",
                "aggregated_output": step.get("output", ""), "exit_code": 1 if step.get("is_error") else 0,
                "status": "failed" if step.get("is_error") else "completed"}})
        elif "error" in step:
            emit({"type": "item.completed", "item": {"id": iid, "type": "error", "message": step["error"]}})
    _hold()
    if scn.get("is_error"):
        emit({"type": "error", "message": scn.get("error", "error")})
        emit({"type": "turn.failed", "error": {"message": scn.get("error", "error")}})
        return
    emit({"type": "item.completed", "item": {"id": f"item_{item}", "type": "agent_message",
                                             "text": scn.get("result", "answer to: " + prompt)}})
    emit({"type": "turn.completed", "usage": {"input_tokens": int(usage.get("input_tokens", 0)),
                                              "cached_input_tokens": int(usage.get("cached_tokens", 0)),
                                              "output_tokens": int(usage.get("output_tokens", 0))}})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def play_gemini(scn: dict[str, Any], emit: Emitter, session: str, prompt: str) -> None:
    usage = scn.get("usage") or {}
    emit({"type": "init", "timestamp": _now(), "session_id": session, "model": scn.get("model") or "gemini-2.5-pro"})
    emit({"type": "message", "timestamp": _now(), "role": "user", "content": prompt})
    calls = 0
    for i, step in enumerate(_expand(scn)):
        if _pace(step):
            continue
        if "text" in step:
            words = step["text"].split(" ")
            half = max(len(words) // 2, 1)
            for chunk in (" ".join(words[:half]), " " + " ".join(words[half:])):
                if chunk.strip():
                    emit({"type": "message", "timestamp": _now(), "role": "assistant", "content": chunk,
                          "delta": True})
        elif "tool" in step:
            calls += 1
            tid = f"{step['tool']}-{int(time.time() * 1000)}-{i}"
            names = {"Bash": "run_shell_command", "Edit": "replace", "Write": "write_file", "Read": "read_file"}
            emit({"type": "tool_use", "timestamp": _now(), "tool_name": names.get(step["tool"], step["tool"]),
                  "tool_id": tid, "parameters": step.get("input") or {}})
            if step.get("is_error"):
                emit({"type": "tool_result", "timestamp": _now(), "tool_id": tid, "status": "error",
                      "output": step.get("output", ""),
                      "error": {"type": "tool_execution_error", "message": step.get("output", "failed")}})
            else:
                emit({"type": "tool_result", "timestamp": _now(), "tool_id": tid, "status": "success",
                      "output": step.get("output", "")})
        elif "error" in step:
            emit({"type": "error", "timestamp": _now(), "severity": "warning", "message": step["error"]})
    _hold()
    total_in, out, cached = (int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)),
                             int(usage.get("cached_tokens", 0)))
    stats = {"total_tokens": total_in + out, "input_tokens": total_in, "output_tokens": out, "cached": cached,
             "input": total_in - cached, "duration_ms": 1234, "tool_calls": calls}
    if scn.get("is_error"):
        emit({"type": "result", "timestamp": _now(), "status": "error",
              "error": {"type": "FatalTurnLimitedError", "message": scn.get("error", "error")}, "stats": stats})
        return
    emit({"type": "message", "timestamp": _now(), "role": "assistant",
          "content": scn.get("result", "answer to: " + prompt), "delta": True})
    emit({"type": "result", "timestamp": _now(), "status": "success", "stats": stats})


def _hold() -> None:
    hold = os.environ.get("FAKE_AGENT_HOLD")
    if hold:
        _wait_file(hold)


def _oneshot(agent: str, scn: dict[str, Any], session: str, prompt: str, argv: list[str]) -> None:
    """The output of a version without streaming (or streaming not asked for)."""
    for step in _expand(scn):
        _pace(step)
    _hold()
    is_error = bool(scn.get("is_error"))
    text = scn.get("error", "error") if is_error else scn.get("result", "answer to: " + prompt)
    if agent == "claude" and _value(argv, "--output-format") == "json":
        usage = scn.get("usage") or {}
        print(json.dumps({"type": "result", "subtype": "error_during_execution" if is_error else "success",
                          "is_error": is_error, "result": text, "session_id": session,
                          "total_cost_usd": usage.get("cost_usd", 0.0), "num_turns": int(scn.get("turns", 1))}))
    else:
        print(text)


def main(agent: str) -> None:
    argv = sys.argv[1:]
    # Like the real CLIs, read the prompt from stdin only when the argv has none.
    needs_stdin = (agent != "gemini" and "--" not in argv and sys.stdin is not None and not sys.stdin.isatty())
    stdin = (sys.stdin.read() or None) if needs_stdin else None
    streaming, flag = _streaming(agent, argv)
    prompt, resume = _prompt_and_resume(agent, argv, stdin)
    log = os.environ.get("FAKE_AGENT_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps({"agent": agent, "argv": argv, "stdin": stdin, "cwd": os.getcwd(), "pid": os.getpid(),
                                 "prompt": prompt, "streaming": streaming, "resume": resume}) + "\n")
    if os.environ.get("FAKE_AGENT_NO_STREAM") == "1" and streaming and flag:
        _reject(agent, flag)
    scn = _load_scenario()
    delay = float(os.environ.get("FAKE_AGENT_DELAY") or scn.get("delay") or 0)
    session = resume or scn.get("session_id") or str(uuid.uuid4())
    emit = Emitter(delay)
    if scn.get("stderr"):
        sys.stderr.write(scn["stderr"])
        sys.stderr.flush()
    if "raw" in scn:
        for line in scn["raw"]:
            emit(line)
    elif streaming:
        {"claude": play_claude, "codex": play_codex, "gemini": play_gemini}[agent](scn, emit, session, prompt)
    else:
        _oneshot(agent, scn, session, prompt, argv)
    sys.exit(int(scn.get("exit_code", 0)))
