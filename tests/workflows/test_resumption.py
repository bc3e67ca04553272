"""resumption.py: which re-run of an agent step continues its session, read from real record files."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.polling import wait_for

from agentcmd.workflows import resumption, steprecords, streamlog

RUN, STEP = "run-1", "review/ask"


def record(data_dir: Path, boot: str, status: str, attempt: int = 0, started: str = "2026-12-04T10:00:00.000Z",
           step_id: str = STEP) -> None:
    steprecords.append_sync(data_dir, {"run_id": RUN, "step_id": step_id, "name": "ask", "phase": "review",
                                       "status": status, "started_at": started, "ended_at": None, "pid": 42,
                                       "attempt": attempt, "error": None, "boot": boot})


def meta(session: str | None = "sess-A", agent: str = "claude", attempt: int = 0) -> dict[str, Any]:
    return {"agent": agent, "session_id": session, "attempt": attempt, "ended": False, "events": 3, "bytes": 90}


def decide(data_dir: Path, step_meta: dict[str, Any] | None, *, agent: str = "claude",
           resume: str | None = None, boot: str = "boot-now") -> resumption.Resumption | None:
    return resumption.decide(agent, resume, step_meta, resumption.step_attempts(data_dir, RUN, STEP), boot)


def test_a_step_cut_short_by_a_crash_continues_its_streamed_session_with_a_note(tmp_path: Path) -> None:
    record(tmp_path, "boot-old", "running")                       # the crash left no end line
    record(tmp_path, "boot-now", "running", started="2026-12-04T10:05:00.000Z")   # this attempt
    got = decide(tmp_path, meta())
    assert got is not None and got.session_id == "sess-A"
    assert "interrupted" in got.note and "2026-12-04T10:00:00.000Z" in got.note
    assert got.prompt("Review the diff") == got.note + "\n\nReview the diff"


def test_a_step_stopped_by_a_graceful_shutdown_continues_too(tmp_path: Path) -> None:
    record(tmp_path, "boot-old", "running")
    record(tmp_path, "boot-old", "interrupted")
    assert decide(tmp_path, meta()) is not None
    # Decided before this attempt's own record is written: the same answer.
    assert decide(tmp_path, meta(), boot="boot-other") is not None


@pytest.mark.parametrize("status", [steprecords.FAILED, steprecords.CANCELLED, steprecords.COMPLETED])
def test_a_step_that_ended_otherwise_starts_fresh(tmp_path: Path, status: str) -> None:
    record(tmp_path, "boot-old", "running")
    record(tmp_path, "boot-old", status)
    record(tmp_path, "boot-now", "running", attempt=1, started="2026-12-04T10:05:00.000Z")
    assert decide(tmp_path, meta()) is None


def test_fresh_when_there_is_nothing_to_continue(tmp_path: Path) -> None:
    record(tmp_path, "boot-now", "running")
    assert decide(tmp_path, meta()) is None, "a first attempt has no previous one"
    record(tmp_path, "boot-old", "running", started="2026-12-04T09:00:00.000Z", step_id="other")
    assert decide(tmp_path, meta()) is None, "another step's interruption is not this one's"


def test_fresh_when_the_meta_has_no_usable_session(tmp_path: Path) -> None:
    record(tmp_path, "boot-old", "running")
    assert decide(tmp_path, None) is None, "interrupted before the CLI said its session id"
    assert decide(tmp_path, meta(session=None)) is None
    assert decide(tmp_path, meta(session="--evil")) is None
    assert decide(tmp_path, meta(agent="codex")) is None, "another agent's session (the step's agent changed)"
    assert decide(tmp_path, meta(), agent="codex") is None
    assert decide(tmp_path, meta(agent="codex"), agent="codex") is not None


def test_a_session_left_by_an_earlier_failed_attempt_is_not_continued(tmp_path: Path) -> None:
    # attempt 0 failed with session sess-A (its meta stays); attempt 1 was cut short before its session was known
    record(tmp_path, "boot-old", "failed", attempt=0)
    record(tmp_path, "boot-old", "running", attempt=1, started="2026-12-04T10:01:00.000Z")
    assert decide(tmp_path, meta(attempt=0)) is None
    assert decide(tmp_path, meta(attempt=1)) is not None


def test_an_explicit_resume_is_kept(tmp_path: Path) -> None:
    record(tmp_path, "boot-old", "running")
    assert decide(tmp_path, meta(), resume="sess-mine") is None


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    record(tmp_path, "boot-old", "running")
    with steprecords.records_file(tmp_path, RUN).open("a") as fh:
        fh.write('{"run_id": "run-1", "step_id": "review/ask", "sta')
    assert decide(tmp_path, meta()) is not None


def test_for_step_reads_off_the_loop_and_survives_a_broken_meta_reader(tmp_path: Path) -> None:
    record(tmp_path, "boot-old", "running")
    seen: list[tuple[Path, str, str]] = []

    def good(data_dir: Path, run_id: str, step_id: str) -> dict[str, Any]:
        seen.append((data_dir, run_id, step_id))
        return meta()

    def broken(data_dir: Path, run_id: str, step_id: str) -> dict[str, Any]:
        raise ValueError("torn meta file")

    got = asyncio.run(resumption.for_step(tmp_path, RUN, STEP, agent="claude", resume=None, boot_id="b",
                                          read_meta=good))
    assert got is not None and got.session_id == "sess-A" and seen == [(tmp_path, RUN, STEP)]
    assert asyncio.run(resumption.for_step(tmp_path, RUN, STEP, agent="claude", resume=None, boot_id="b",
                                           read_meta=broken)) is None


def test_resume_interrupted_gives_the_call_to_make_and_leaves_a_notice_in_the_stream(tmp_path: Path) -> None:
    record(tmp_path, "boot-old", "running")
    streamlog.set_step_meta(tmp_path, RUN, STEP, agent="claude", session_id="sess-A", attempt=0)

    async def call(resume: str | None) -> resumption.AgentCall:
        got = await resumption.resume_interrupted(tmp_path, RUN, STEP, 0, agent="claude", resume=resume,
                                                  prompt="Fix it", boot_id="boot-now")
        await streamlog.stream_log(tmp_path, RUN).flush()
        return got

    got = asyncio.run(call(None))
    assert got.resume == got.resumed_session == "sess-A"
    assert got.prompt.startswith("[agentcmd] Your previous run of this step was interrupted")
    assert got.prompt.endswith("\n\nFix it")
    [notice] = streamlog.read_events(tmp_path, RUN, step_id=STEP)
    assert notice["kind"] == "notice" and notice["text"] == "resuming interrupted session sess-A"
    assert notice["agent"] == "claude" and notice["attempt"] == 0

    assert asyncio.run(call("sess-mine")) == resumption.AgentCall("sess-mine", "Fix it", None)
    assert len(streamlog.read_events(tmp_path, RUN, step_id=STEP)) == 1


ASK = '''
from agentcmd import define_workflow

@define_workflow(id="ask", phases=["review"], retries=1)
async def ask(ctx, step):
    with step.phase("review"):
        a = await step.agent("ask", agent=ctx.input["agent"], prompt="Fix it", resume=ctx.input.get("resume"))
    return {"text": a.text, "session": a.session_id, "resumed": a.resumed_session}
'''


def _data_dir(server: Any) -> Path:
    from agentcmd.workflows.context import get_runtime

    return get_runtime().data_dir


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_each_cli_is_called_with_its_resume_form_after_an_interruption(
        app_server: Any, write_workflow: Any, fake_agents: Any, agent: str) -> None:
    """The app's records say an earlier app server was running this step and the CLI had streamed its
    session: the step's next call continues that session, in the CLI's own resume syntax."""
    write_workflow("ask.py", ASK)
    server = app_server()
    run_id = "run-resumed-" + agent
    data_dir = _data_dir(server)
    steprecords.append_sync(data_dir, {"run_id": run_id, "step_id": STEP, "name": "ask", "phase": "review",
                                       "status": "running", "started_at": "2026-12-04T10:00:00.000Z",
                                       "attempt": 0, "boot": "an-earlier-app-server"})
    streamlog.set_step_meta(data_dir, run_id, STEP, agent=agent, session_id="sess-old", attempt=0)
    run = server.driver.run("ask", {"agent": agent}, run_id=run_id)
    assert run.status == "Completed", run.calls[-1]
    assert run.output["resumed"] == "sess-old" and run.output["session"] == "sess-old"
    [call] = fake_agents.calls()
    assert call["resume"] == "sess-old" and call["prompt"].endswith("\n\nFix it")
    argv = call["argv"]
    if agent == "codex":
        assert argv[argv.index("resume") + 1] == "sess-old", argv
    else:
        assert argv[argv.index("--resume") + 1] == "sess-old", argv
    # The stream is written by a flush task after the step answered: poll until the agent's events are there.
    kinds = wait_for(lambda: "session" in (k := [e["kind"] for e in streamlog.read_events(
        data_dir, run_id, step_id=STEP)]) and k, 10, "the agent's events in the stream")
    assert kinds[0] == "notice", kinds


def test_a_step_that_failed_normally_retries_with_a_fresh_session(
        app_server: Any, write_workflow: Any, fake_agents: Any) -> None:
    write_workflow("ask.py", ASK)
    fake_agents.scenario({"session_id": "sess-bad", "is_error": True, "error": "model overloaded",
                          "exit_code": 1})
    run = app_server().driver.run("ask", {"agent": "claude"}, max_attempts=2)
    assert run.status == "Failed"
    calls = fake_agents.calls()
    assert len(calls) == 2 and [c["resume"] for c in calls] == [None, None], calls
    assert [c["prompt"] for c in calls] == ["Fix it", "Fix it"]


def test_an_explicit_resume_is_used_as_given(app_server: Any, write_workflow: Any, fake_agents: Any) -> None:
    write_workflow("ask.py", ASK)
    server = app_server()
    data_dir = _data_dir(server)
    steprecords.append_sync(data_dir, {"run_id": "run-explicit", "step_id": STEP, "status": "running",
                                       "started_at": "2026-12-04T10:00:00.000Z", "attempt": 0, "boot": "old"})
    streamlog.set_step_meta(data_dir, "run-explicit", STEP, agent="claude", session_id="sess-old", attempt=0)
    run = server.driver.run("ask", {"agent": "claude", "resume": "sess-mine"}, run_id="run-explicit")
    assert run.status == "Completed" and run.output["resumed"] is None
    [call] = fake_agents.calls()
    assert call["resume"] == "sess-mine" and call["prompt"] == "Fix it"
