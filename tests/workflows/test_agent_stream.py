"""Agent CLIs in streaming mode: each CLI's lines parsed into the shared stream events, kept while
the agent still runs, the fallback for versions without streaming, and the step's result fields."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from tests.harness.fakeagents import BIN, FakeAgents
from tests.harness.processes import pid_alive
from tests.polling import wait_for

from agentcmd.workflows import agentrun, agents, agentstream, costs, streamlog
from agentcmd.workflows.agents import get_adapter
from agentcmd.workflows.process import run_process
from agentcmd.workflows.results import AgentResult


@pytest.fixture(autouse=True)
def _fresh_fallback_memory() -> Any:
    agents.forget_no_streaming()
    yield
    agents.forget_no_streaming()


def fake_lines(agent: str, scenario: str = "normal", prompt: str = "fix it", **env: str) -> list[str]:
    """What the fake CLI prints in streaming mode for ``scenario``."""
    argv, _ = get_adapter(agent).command(str(BIN / agent), prompt, model=None, resume=None, stream=True)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "FAKE_AGENT_SCENARIO": scenario, **env}, check=False)
    return out.stdout.splitlines()


def parse(agent: str, lines: list[str]) -> tuple[list[dict[str, Any]], agentstream.FinalResult]:
    parser = agentstream.new_parser(agent)
    events = [e for line in lines for e in parser.feed(line)]
    return events, parser.final()


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


# Parsing each CLI's recorded shapes ----------------------------------------------------------------

@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_a_normal_session_gives_session_text_tools_usage_and_result(agent: str) -> None:
    events, final = parse(agent, fake_lines(agent))
    assert events[0]["kind"] == "session" and events[0]["session_id"] == final.session_id
    assert all(set(e) >= {"agent", "kind", "text", "tool", "tool_id", "summary", "status", "session_id", "usage",
                          "stream", "raw"} for e in events)
    assert all(e["agent"] == agent for e in events)
    calls = [e for e in events if e["kind"] == "tool_call"]
    results = [e for e in events if e["kind"] == "tool_result"]
    assert len(calls) == 2 and len(results) == 2
    assert [r["tool_id"] for r in results] == [c["tool_id"] for c in calls]
    assert all(r["status"] == "ok" for r in results)
    assert "pytest -q tests/test_x.py" in calls[0]["summary"]
    assert any(e["kind"] == "text" and "failing test" in (e["text"] or "") for e in events)
    assert events[-1]["kind"] == "result" and events[-1]["status"] == "ok"
    assert final.text == "answer to: fix it" and not final.is_error
    assert (final.usage.input_tokens, final.usage.cached_tokens, final.usage.output_tokens) == (1200, 800, 300)
    assert final.tool_calls == 2
    assert final.usage.cost_usd == (0.0123 if agent == "claude" else None)
    assert final.usage.turns >= 1


def test_claude_usage_is_a_running_total_per_message_and_the_result_is_authoritative() -> None:
    events, final = parse("claude", fake_lines("claude"))
    running = [e["usage"]["input_tokens"] for e in events if e["kind"] == "usage"]
    assert running == sorted(running) and len(running) == 4 and running[-1] == 1200
    [result] = [e for e in events if e["kind"] == "result"]
    assert result["status"] == "ok" and result["usage"]["cost_usd"] == 0.0123 and result["usage"]["turns"] == 3
    assert isinstance(final.json, dict) and final.json["type"] == "result"   # the result object, as before


def test_claude_repeats_usage_on_every_block_of_a_message_and_it_is_counted_once() -> None:
    usage = {"input_tokens": 5, "cache_read_input_tokens": 10, "output_tokens": 7}
    line = {"type": "assistant", "message": {"id": "msg_1", "content": [], "usage": usage}, "session_id": "s"}
    parser = agentstream.new_parser("claude")
    parser.feed(json.dumps({**line, "message": {**line["message"], "content": [{"type": "text", "text": "a"}]}}))
    parser.feed(json.dumps({**line, "message": {**line["message"], "content": [
        {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/x"}}]}}))
    assert (parser.result.usage.input_tokens, parser.result.usage.cached_tokens) == (15, 10)


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_an_error_result_says_what_went_wrong(agent: str) -> None:
    events, final = parse(agent, fake_lines(agent, "error"))
    assert final.is_error and final.error == "the model quota is exhausted"
    [result] = [e for e in events if e["kind"] == "result"]
    assert result["status"] == "error" and result["text"] == "the model quota is exhausted"
    assert [r["status"] for r in events if r["kind"] == "tool_result"] == ["error"]


def test_codex_documented_lines() -> None:
    lines = [
        '{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}',
        '{"type":"turn.started"}',
        '{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"**Searching**"}}',
        '{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls",'
        '"aggregated_output":"","exit_code":null,"status":"in_progress"}}',
        '{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls",'
        '"aggregated_output":"docs\\nsdk","exit_code":0,"status":"completed"}}',
        '{"type":"item.completed","item":{"id":"item_2","type":"mcp_tool_call","server":"docs","tool":"search",'
        '"arguments":{"query":"x"},"status":"failed","error":{"message":"down"}}}',
        '{"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"Repo has docs and sdk."}}',
        '{"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}',
    ]
    events, final = parse("codex", lines)
    assert kinds(events) == ["session", "tool_call", "tool_result", "tool_call", "tool_result", "text", "result"]
    assert events[1]["tool"] == "shell" and events[1]["summary"] == "bash -lc ls"
    assert events[4]["tool"] == "docs.search" and events[4]["status"] == "error" and events[4]["text"] == "down"
    assert final.session_id == "0199a213-81c0-7800-8aa1-bbab2a035a53"
    assert final.text == "Repo has docs and sdk."
    assert (final.usage.input_tokens, final.usage.cached_tokens, final.usage.output_tokens) == (24763, 24448, 122)


def test_codex_turn_failed_is_an_error_result() -> None:
    events, final = parse("codex", ['{"type":"thread.started","thread_id":"t"}',
                                    '{"type":"error","message":"stream disconnected"}',
                                    '{"type":"turn.failed","error":{"message":"stream disconnected"}}'])
    assert kinds(events) == ["session", "error", "result"]
    assert final.is_error and final.error == "stream disconnected"


def test_gemini_deltas_are_joined_into_the_answer_and_tokens_read_from_stats() -> None:
    lines = ['{"type":"init","timestamp":"t","session_id":"abc123","model":"gemini-2.5-pro"}',
             '{"type":"message","role":"user","content":"hi"}',
             '{"type":"message","role":"assistant","content":"Here are","delta":true}',
             '{"type":"message","role":"assistant","content":" the files.","delta":true}',
             '{"type":"result","status":"success","stats":{"total_tokens":250,"input_tokens":50,'
             '"output_tokens":200,"cached":20,"duration_ms":3000,"tool_calls":0}}']
    events, final = parse("gemini", lines)
    assert final.text == "Here are the files." and final.model == "gemini-2.5-pro" and final.session_id == "abc123"
    assert (final.usage.input_tokens, final.usage.cached_tokens, final.usage.output_tokens) == (50, 20, 200)
    assert kinds(events) == ["session", "text", "text", "result"]


def test_lines_that_are_not_events_do_not_break_the_parser() -> None:
    parser = agentstream.new_parser("claude")
    assert kinds(parser.feed("Loading MCP servers...")) == ["output"]
    assert parser.feed("") == [] and parser.feed('{"type":"stream_event","event":{}}') == []
    assert kinds(parser.feed('{"type":"assistant","message":{"content":"not a list","usage":7}}')) == []
    assert kinds(parser.feed('{"type":"user","message":{"content":[{"type":"tool_result","content":[{"type":'
                             '"text","text":"ok"}],"tool_use_id":"x"}]}}')) == ["tool_result"]


def test_a_tool_summary_is_one_short_line() -> None:
    summary = agentstream.summarize("Bash", {"command": "echo " + "x" * 500 + "\n\nnext"})
    assert len(summary) <= 200 and "\n" not in summary
    assert agentstream.summarize("Edit", {"file_path": "src/a.py", "old_string": "x"}) == "src/a.py"
    assert agentstream.summarize("t", {"n": 1}) == '{"n":1}'


# Streaming while the agent runs ----------------------------------------------------------------------

def _stream(tmp_path: Path, agent: str, run_id: str = "run-1") -> agentrun.AgentStream:
    log = streamlog.stream_log(tmp_path, run_id)
    return agentrun.AgentStream(log, tmp_path, run_id, "work/fix", 0, agent, agentstream.new_parser(agent))


def _execute(cwd: Path) -> agentrun.Execute:
    async def execute(argv: list[str], *, stdin: bytes | None, on_line: Any, stop: Any) -> Any:
        return await run_process(argv, cwd=cwd, stdin=stdin, on_line=on_line, stop=stop)
    return execute  # type: ignore[return-value]


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_events_are_stored_and_the_session_noted_while_the_agent_still_runs(
        fake_agents: FakeAgents, tmp_path: Path, agent: str) -> None:
    fake_agents.hold()
    data = tmp_path / "data"

    async def main() -> agentrun.AgentOutcome:
        stream = _stream(data, agent)
        task = asyncio.ensure_future(agentrun.run_agent(
            get_adapter(agent), str(BIN / agent), "fix it", model=None, resume=None, extra=[], stream=stream,
            execute=_execute(tmp_path)))

        def seen() -> list[dict[str, Any]]:
            return streamlog.read_events(data, "run-1", step_id="work/fix")

        while not [e for e in await asyncio.to_thread(seen) if e["kind"] == "tool_result"]:
            assert not task.done(), task
            await asyncio.sleep(0.02)
        [call] = fake_agents.calls()
        assert pid_alive(call["pid"]), "the agent had already ended"
        meta = await asyncio.to_thread(streamlog.step_meta, data, "run-1", "work/fix")
        assert meta and meta["session_id"] and meta["agent"] == agent and meta["ended"] is False
        assert not [e for e in await asyncio.to_thread(seen) if e["kind"] == "result"]
        fake_agents.release()
        out = await task
        await stream.close()
        await stream.log.flush()  # type: ignore[union-attr]
        return out

    out = asyncio.run(main())
    assert out.streamed and out.res.exit_code == 0 and out.text == "answer to: fix it"
    events = streamlog.read_events(data, "run-1")
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert events[0]["kind"] == "session" and events[0]["session_id"] == out.session_id
    assert all(e["step_id"] == "work/fix" and e["run_id"] == "run-1" and e["ts"] > 0 for e in events)
    assert streamlog.step_meta(data, "run-1", "work/fix")["ended"] is True  # type: ignore[index]


def test_a_cli_without_streaming_runs_in_the_old_mode_once_told_and_says_so(
        fake_agents: FakeAgents, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake_agents.no_stream()
    data = tmp_path / "data"

    async def once(run_id: str) -> agentrun.AgentOutcome:
        stream = _stream(data, "codex", run_id)
        out = await agentrun.run_agent(get_adapter("codex"), str(BIN / "codex"), "-rf", model=None, resume=None,
                                       extra=[], stream=stream, execute=_execute(tmp_path))
        await stream.log.flush()  # type: ignore[union-attr]
        return out

    with caplog.at_level(logging.WARNING, logger="agentcmd.agents"):
        first = asyncio.run(once("run-a"))
        second = asyncio.run(once("run-b"))
    assert not first.streamed and first.text == "answer to: -rf" and first.res.exit_code == 0
    assert second.text == "answer to: -rf"
    assert [c["streaming"] for c in fake_agents.calls()] == [True, False, False]   # asked once per executable
    assert [c["prompt"] for c in fake_agents.calls()] == ["-rf"] * 3
    assert len([r for r in caplog.records if "does not support streaming" in r.getMessage()]) == 1
    for run_id in ("run-a", "run-b"):
        notice = [e for e in streamlog.read_events(data, run_id) if e["kind"] == "notice"]
        assert len(notice) == 1 and "codex does not stream here (no --json)" in notice[0]["text"]
    kept = [(e["kind"], e["stream"], e["text"]) for e in streamlog.read_events(data, "run-a")]
    assert kept[0] == ("output", "stderr", "error: unexpected argument '--json' found")   # why, in the stream
    assert kept[-1] == ("output", "stdout", "answer to: -rf")
    assert [e[2] for e in streamlog.read_events(data, "run-b") and kept if e[0] == "output"][-1] == "answer to: -rf"


def test_a_failure_that_is_not_about_the_flag_is_no_fallback(fake_agents: FakeAgents, tmp_path: Path) -> None:
    fake_agents.scenario("fail")
    data = tmp_path / "data"

    async def main() -> agentrun.AgentOutcome:
        return await agentrun.run_agent(get_adapter("claude"), str(BIN / "claude"), "hi", model=None,
                                        resume=None, extra=[], stream=_stream(data, "claude"),
                                        execute=_execute(tmp_path))

    out = asyncio.run(main())
    assert out.res.exit_code == 3 and len(fake_agents.calls()) == 1 and not agents.no_streaming(str(BIN / "claude"))


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
@pytest.mark.parametrize("prompt", ["-rf /", "--help", "--model=evil do this"])
def test_a_dash_prompt_is_the_prompt_in_streaming_mode(fake_agents: FakeAgents, agent: str, prompt: str) -> None:
    argv, stdin = get_adapter(agent).command(str(BIN / agent), prompt, model="m1", resume="s-1", stream=True)
    assert stdin is None
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    [call] = fake_agents.calls()
    assert call["prompt"] == prompt and call["streaming"] and call["resume"] == "s-1"
    _, final = parse(agent, res.stdout.splitlines())
    assert final.text == "answer to: " + prompt and final.session_id == "s-1"


def test_streaming_argv_per_cli() -> None:
    def argv(agent: str, **kw: Any) -> list[str]:
        return get_adapter(agent).command(agent, "hi", **{"model": None, "resume": None, **kw}, stream=True)[0]

    assert argv("claude", model="opus") == ["claude", "-p", "--output-format", "stream-json", "--verbose",
                                            "--model", "opus", "--", "hi"]
    assert argv("codex", resume="S") == ["codex", "exec", "--json", "resume", "S", "--", "hi"]
    assert argv("gemini", resume="S") == ["gemini", "--output-format", "stream-json", "--resume", "S",
                                          "--prompt=hi"]
    long_argv, stdin = get_adapter("claude").command("claude", "x" * 200_000, model=None, resume=None, stream=True)
    assert long_argv == ["claude", "-p", "--output-format", "stream-json", "--verbose"] and stdin


# The step ------------------------------------------------------------------------------------------

ASK = '''
from agentcmd import define_workflow

@define_workflow(id="ask", phases=["work"], retries=0)
async def ask(ctx, step):
    with step.phase("work"):
        r = await step.agent("fix", prompt="fix it", agent=ctx.input["agent"],
                             max_cost_usd=ctx.input.get("max"))
    return r.to_json()
'''


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_the_step_returns_the_streamed_result_and_keeps_the_stream(
        app_server: Any, write_workflow: Any, fake_agents: FakeAgents, agent: str) -> None:
    write_workflow("ask.py", ASK)
    server = app_server()
    run = server.driver.run("ask", {"agent": agent}, run_id=f"run-{agent}")
    assert run.status == "Completed", run.output
    out = AgentResult.from_json(run.output)
    assert out.streamed and out.text == "answer to: fix it" and out.exit_code == 0 and out.session_id
    assert (out.input_tokens, out.cached_tokens, out.output_tokens, out.tool_calls) == (1200, 800, 300, 2)
    assert out.turns >= 1
    if agent == "claude":
        assert (out.cost_usd, out.cost_source, out.model) == (0.0123, "reported", "claude-sonnet-4-5-20250929")
    else:
        assert out.cost_source == "price_table" and out.cost_usd and out.cost_usd > 0
    data_dir = server.app.state.runtime.data_dir
    events = wait_for(lambda: (ev := streamlog.read_events(data_dir, f"run-{agent}", step_id="work/fix"))
                      and ev[-1]["kind"] in ("result", "usage") and ev, what="the kept stream")
    assert out.events == len(events)
    assert {"session", "text", "tool_call", "tool_result", "result"} <= set(kinds(events))
    assert events[-1]["usage"]["input_tokens"] == 1200
    assert streamlog.step_meta(data_dir, f"run-{agent}", "work/fix")["session_id"] == out.session_id  # type: ignore[index]


def test_an_error_result_fails_the_step_with_the_agents_message(
        app_server: Any, write_workflow: Any, fake_agents: FakeAgents) -> None:
    write_workflow("ask.py", ASK)
    fake_agents.scenario("error")
    run = app_server().driver.run("ask", {"agent": "claude"})
    assert run.status == "Failed"
    assert "the model quota is exhausted" in run.output["message"]


def test_a_budget_passed_mid_stream_stops_the_agent_and_fails_the_run(
        app_server: Any, write_workflow: Any, fake_agents: FakeAgents) -> None:
    write_workflow("ask.py", ASK)
    fake_agents.hold()   # the fake would wait forever before its result: only the stop ends it
    fake_agents.scenario({"steps": [{"text": "reading everything"}, {"text": "still reading"}],
                          "usage": {"input_tokens": 20_000_000, "output_tokens": 10, "cached_tokens": 0}})
    server = app_server()
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(run=server.driver.run("ask", {"agent": "claude", "max": 1.0},
                                                                                      run_id="run-over")))
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    run = result["run"]
    assert run.status == "Failed" and run.output["message"].startswith("budget exceeded:")
    assert "over its max_cost_usd $1.00; the agent was stopped" in run.output["message"]
    [call] = fake_agents.calls()
    wait_for(lambda: not pid_alive(call["pid"]), what="the agent's process group stopped")
    [entry] = costs.run_entries(server.app.state.runtime.data_dir, "run-over")
    assert entry["status"] == "budget_exceeded" and entry["cost_usd"] > 1.0


def test_an_old_memo_without_the_new_fields_still_loads() -> None:
    old = {"agent": "claude", "text": "t", "exit_code": 0, "json": None, "session_id": "s", "model": None,
           "stderr": "", "duration_s": 1.0, "phase": None}
    res = AgentResult.from_json(old)
    assert (res.streamed, res.events, res.cost_usd, res.input_tokens, res.resumed_session) == (False, 0, None, 0, None)
