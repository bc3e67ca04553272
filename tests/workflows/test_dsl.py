"""The DSL against the real SDK handler: steps memoise, phases record, control flow passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIX_TESTS = '''
from agentcmd import define_workflow

@define_workflow(id="fix-tests", name="Fix failing tests", phases=["plan", "fix", "ship"], retries=0)
async def fix_tests(ctx, step):
    with step.phase("plan"):
        plan = await step.agent("plan", agent="claude", prompt=f"Plan a fix for: {ctx.input['issue']}")
    with step.phase("fix"):
        result = await step.cli("tests", "echo ran >> tests.log; exit 1", check=False)
        await step.sleep("cool-down", "5s")
    return {"plan": plan.text, "tests_ok": result.exit_code == 0, "session": plan.session_id}
'''


def test_a_workflow_runs_to_completion_and_its_agent_ran_exactly_once(
        app_server: Any, write_workflow: Any, fake_claude: Any, project: Path) -> None:
    write_workflow("fix.py", FIX_TESTS)
    server = app_server()
    run = server.driver.run("fix-tests", {"issue": "test_x fails"})
    assert run.status == "Completed", run.calls[-1]
    assert run.output == {"plan": "answer to: Plan a fix for: test_x fails", "tests_ok": False,
                          "session": "sess-123"}
    # The body was replayed on every call, but each step ran once.
    assert len(run.calls) >= 4
    assert len(fake_claude.calls()) == 1
    assert (project / "tests.log").read_text() == "ran\n"
    assert fake_claude.calls()[0]["argv"] == ["-p", "--output-format", "stream-json", "--verbose", "--",
                                              "Plan a fix for: test_x fails"]


def test_steps_are_recorded_with_their_phase(app_server: Any, write_workflow: Any, fake_claude: Any) -> None:
    write_workflow("fix.py", FIX_TESTS)
    run = app_server().driver.run("fix-tests", {"issue": "x"})
    assert run.names == ["plan/plan", "fix/tests", "fix/cool-down"]
    memo = next(iter(run.memos.values()))
    assert memo["data"]["phase"] == "plan"


def test_an_unknown_phase_fails_the_run_without_retries(app_server: Any, write_workflow: Any) -> None:
    write_workflow("bad_phase.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="bad-phase", phases=["plan"], retries=3)
        async def body(ctx, step):
            with step.phase("deploy"):
                await step.cli("x", "true")
    ''')
    run = app_server().driver.run("bad-phase", max_attempts=4)
    assert run.status == "Failed"
    assert len(run.calls) == 1  # non-retriable
    assert "unknown phase 'deploy'" in run.output["message"] and "plan" in run.output["message"]


def test_cli_result_has_exit_code_and_tail_truncated_output(app_server: Any, write_workflow: Any) -> None:
    write_workflow("big.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="big", retries=0)
        async def body(ctx, step):
            r = await step.cli("spam", "python3 -c \\"print('x' * 200000); print('END')\\"; echo err >&2")
            return {"code": r.exit_code, "bytes": r.stdout_bytes, "len": len(r.stdout),
                    "head": r.stdout[:60], "tail": r.stdout[-4:], "stderr": r.stderr}
    ''')
    run = app_server().driver.run("big")
    out = run.output
    assert out["code"] == 0 and out["bytes"] == 200005 and out["stderr"] == "err\n"
    assert out["len"] < 70 * 1024 and out["tail"] == "END\n"
    assert out["head"].startswith("[... 134469 earlier bytes of 200005 truncated")


def test_a_failing_command_with_check_fails_the_step_and_is_retried_per_policy(
        app_server: Any, write_workflow: Any, project: Path) -> None:
    write_workflow("flaky.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="flaky", retries=2)
        async def body(ctx, step):
            r = await step.cli("flaky", "echo try >> tries.log; test $(wc -l < tries.log) -ge 3")
            return r.exit_code
    ''')
    run = app_server().driver.run("flaky", max_attempts=3)
    assert run.status == "Completed" and run.output == 0
    assert (project / "tries.log").read_text().count("try") == 3


def test_control_flow_passes_through_user_try_except_and_a_failed_agent_step_memoises(
        app_server: Any, write_workflow: Any, fake_claude: Any, monkeypatch: Any) -> None:
    write_workflow("catchy.py", '''
        import inngest
        from agentcmd import define_workflow

        @define_workflow(id="catchy", retries=0)
        async def body(ctx, step):
            caught = []
            try:
                await step.agent("ask", prompt="hi")
            except Exception as err:  # must not swallow the SDK's interrupts
                caught.append(type(err).__name__)
            try:
                await step.cli("after", "echo after")
            except Exception as err:
                caught.append(type(err).__name__)
            return caught
    ''')
    monkeypatch.setenv("FAKE_AGENT_FAIL", "1")
    run = app_server().driver.run("catchy")
    assert run.status == "Completed", run.calls[-1]
    # The agent step failed once (its error memoised), the user code saw StepError on replay, and the
    # next step still ran: if the interrupt had been caught, "after" would never have been reported.
    assert run.output == ["StepError"]
    assert run.names == ["ask", "after"]
    assert "error" in run.memos[next(iter(run.memos))]
    assert len(fake_claude.calls()) == 1


def test_a_missing_agent_cli_fails_with_how_to_fix_it(app_server: Any, write_workflow: Any,
                                                      monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    write_workflow("noagent.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="noagent", retries=3)
        async def body(ctx, step):
            return (await step.agent("ask", agent="codex", prompt="hi")).text
    ''')
    run = app_server().driver.run("noagent", max_attempts=4)
    assert run.status == "Failed" and len(run.calls) == 1
    assert "install codex or set agents.codex.path" in run.output["message"]


def test_agent_path_from_settings_and_resume_session(app_server: Any, write_workflow: Any, tmp_path: Path,
                                                     monkeypatch: Any, agent_factory: Any) -> None:
    agent = agent_factory(tmp_path / "elsewhere")
    monkeypatch.setenv("AGENTCMD_AGENTS__CLAUDE__PATH", str(agent.path))
    write_workflow("resume.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="resume", retries=0)
        async def body(ctx, step):
            first = await step.agent("first", prompt="start", model="opus")
            second = await step.agent("second", prompt="continue", resume=first.session_id)
            return [first.session_id, second.session_id, second.json["type"]]
    ''')
    run = app_server().driver.run("resume")
    assert run.output == ["sess-123", "sess-123", "result"]
    calls = agent.calls()
    assert len(calls) == 2
    assert "--model" in calls[0]["argv"] and "opus" in calls[0]["argv"]
    assert calls[1]["argv"][-4:] == ["--resume", "sess-123", "--", "continue"]


def test_run_log_artifact_and_wait_for_event(app_server: Any, write_workflow: Any, project: Path) -> None:
    (project / "report.txt").write_text("all good")
    write_workflow("misc.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="misc", phases=["one"], retries=0)
        async def body(ctx, step):
            with step.phase("one"):
                n = await step.run("compute", lambda: 6 * 7)
                await step.log(f"n is {n}")
                a = await step.artifact("report", "report.txt")
                b = await step.artifact("notes", "some text\\nmore")
                ev = await step.wait_for_event("approval", event="app/approved", timeout="1h")
                none = await step.wait_for_event("other", event="app/other", timeout="1s")
            return {"n": n, "a": a["bytes"], "b": b["path"], "ev": ev["data"], "none": none}
    ''')
    approved = {"name": "app/approved", "data": {"by": "me"}, "id": "e1", "ts": 1, "user": {}}
    run = app_server().driver.run("misc", events={"app/approved": approved, "app/other": None})
    assert run.status == "Completed", run.calls[-1]
    assert run.output["n"] == 42 and run.output["a"] == 8 and run.output["ev"] == {"by": "me"}
    assert run.output["none"] is None
    assert Path(run.output["b"]).read_text() == "some text\nmore"
    assert run.names == ["one/compute", "one/log", "one/artifact:report", "one/artifact:notes",
                         "one/approval", "one/other"]
    log_memo = next(m for m in run.memos.values() if isinstance(m, dict) and "log" in str(m))
    assert json.dumps(log_memo["data"]) == json.dumps({"log": "n is 42", "phase": "one"})


def test_a_prompt_too_long_for_argv_goes_to_claude_through_stdin(app_server: Any, write_workflow: Any,
                                                                 fake_claude: Any) -> None:
    write_workflow("long.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="long", retries=0)
        async def body(ctx, step):
            r = await step.agent("ask", prompt="x" * 300_000 + "END")
            return [len(r.text), r.text[-3:]]
    ''')
    run = app_server().driver.run("long")
    assert run.output == [len("answer to: ") + 300_003, "END"]
    [call] = fake_claude.calls()
    assert call["argv"] == ["-p", "--output-format", "stream-json", "--verbose"]
