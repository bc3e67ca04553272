"""``agentcmd runs watch`` and ``workflows run --wait`` following a run's live stream.

The printer is checked as a pure function on a recorded event sequence;
the follower as real ``python -m agentcmd`` subprocesses against a real
HTTP server speaking the app API's live stream (``tests/cli/liveapp.py``):
kept events of a finished run, reconnecting with ``Last-Event-ID`` after a
clean end and after a dropped connection, the fallback to polling on an
app server without the route, timeouts, the bearer, and the exit codes.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.cli.liveapp import RUN_ID, Connection, LiveApp, jsonl, run_data, step
from tests.harness.processes import run_cli
from tests.harness.servers import LiveServer

from agentcmd.cli.agentlines import agent_line
from agentcmd.cli.livestream import SseParser
from agentcmd.config.keys import generate_signing_key, hash_signing_key

BASE = {"run_id": RUN_ID, "step_id": "plan/review", "attempt": 0, "agent": "claude", "text": None, "tool": None,
        "tool_id": None, "summary": None, "status": None, "session_id": None, "usage": None, "stream": None}


def ev(seq: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {**BASE, "seq": seq, "ts": 1764849600.0 + seq, "kind": kind, **fields}


# A claude step as the stream store keeps it (contracts section 1), then a step.cli line.
RECORDED = [
    ev(1, "session", session_id="sess-7f3a"),
    ev(2, "text", text="I'll start by reading\nthe failing test."),
    ev(3, "tool_call", tool="Bash", tool_id="t1", summary="ls -la"),
    ev(4, "tool_result", tool="Bash", tool_id="t1", status="ok", text="total 8"),
    ev(5, "usage", usage={"input_tokens": 900, "output_tokens": 120, "cached_tokens": 0, "cost_usd": 0.004,
                          "turns": 1}),
    ev(6, "tool_call", tool="Edit", tool_id="t2", summary="src/app.py"),
    ev(7, "tool_result", tool="Edit", tool_id="t2", status="error", text="file changed\non disk"),
    ev(8, "text", text="Fixed: [bold]the test[/] passes."),
    ev(9, "result", status="ok", text="done", usage={"input_tokens": 1200, "output_tokens": 340,
                                                      "cached_tokens": 5000, "cost_usd": 0.0123, "turns": 3}),
    {**ev(10, "output", text="===== 12 passed =====", stream="stdout"), "step_id": "plan/test", "agent": None},
]

EXPECTED_LINES = [
    "agent  plan/review  session  sess-7f3a",
    "agent  plan/review  text  I'll start by reading the failing test.",
    "agent  plan/review  tool  Bash: ls -la",
    "agent  plan/review  tool-result ok  Bash",
    "agent  plan/review  tool  Edit: src/app.py",
    "agent  plan/review  tool-result error  Edit: file changed on disk",
    "agent  plan/review  text  Fixed: [bold]the test[/] passes.",
    "agent  plan/review  result ok  tokens in=1200 out=340 cached=5000 cost=$0.0123 turns=3",
    "output  plan/test  stdout  ===== 12 passed =====",
]

RUNNING = run_data("Running", [step("plan/review", "Running", elapsed_ms=None)])
DONE = run_data("Completed", [step("plan/review", "Completed", elapsed_ms=4200)], output={"ok": True})
FAILED = run_data("Failed", [step("plan/review", "Failed", elapsed_ms=900,
                                  error={"name": "BudgetExceededError", "message": "budget exceeded: $0.50"})],
                  error={"name": "BudgetExceededError", "message": "budget exceeded: $0.50"})


def test_each_event_is_one_greppable_line() -> None:
    lines = [line for line in map(agent_line, RECORDED) if line is not None]
    assert lines == EXPECTED_LINES  # usage (running totals) gives no line: the result carries them
    long = agent_line(ev(11, "text", text="word " * 1000))
    assert long is not None and long.endswith("...") and len(long) < 2100
    assert agent_line(ev(12, "dropped", text="1234 earlier events (2.0 MiB) dropped: step cap 4 MiB")) == \
        "agent  plan/review  dropped  1234 earlier events (2.0 MiB) dropped: step cap 4 MiB"
    assert agent_line(ev(13, "some_new_kind", text="x")) == "agent  plan/review  some_new_kind  x"


def test_the_sse_parser_follows_the_event_stream_rules() -> None:
    parser = SseParser()
    wire = ("retry: 1000\n\n: keepalive\n\nid: 4\nevent: agent\ndata: {\"a\":\ndata: 1}\n\n"
            "event: run\ndata: {}\n\nid: 5\ndata: x\n\n")
    got = [e for e in map(parser.feed, wire.split("\n")) if e is not None]
    assert [(e.event, e.data, e.id) for e in got] == [("agent", '{"a":\n1}', "4"), ("run", "{}", "4"),
                                                      ("message", "x", "5")]
    assert parser.last_id == "5" and parser.retry_ms == 1000


@pytest.fixture
def serve() -> Iterator[Callable[[LiveApp], str]]:
    servers: list[LiveServer] = []

    def start(live: LiveApp) -> str:
        server = LiveServer(live.build()).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


def _port(url: str) -> dict[str, str]:
    return {"PORT": url.rsplit(":", 1)[1]}


def _agent_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("agent  ", "output  "))]


def test_watch_on_a_finished_run_prints_the_kept_events_and_exits_0(serve: Any) -> None:
    live = LiveApp(RECORDED, DONE, DONE)
    out = run_cli("runs", "watch", RUN_ID, env=_port(serve(live)))
    assert out.returncode == 0, out.stderr
    assert _agent_lines(out.stdout) == EXPECTED_LINES
    assert "step completed plan/review  4.2s" in out.stdout
    assert out.stdout.rstrip().endswith(f"run {RUN_ID} completed")
    assert live.seen_last_ids == [None]


def test_watch_of_a_failed_run_exits_1_with_its_error(serve: Any) -> None:
    live = LiveApp(RECORDED[:3], FAILED, FAILED)
    out = run_cli("runs", "watch", RUN_ID, env=_port(serve(live)))
    assert out.returncode == 1
    assert "step failed    plan/review  0.9s  error=BudgetExceededError: budget exceeded: $0.50" in out.stdout
    assert f"error: run {RUN_ID} failed: BudgetExceededError: budget exceeded: $0.50" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_step_that_fails_while_watched_shows_its_error(serve: Any) -> None:
    """The live run event has no step errors: the follower reads the run once when a step fails."""
    live = LiveApp(RECORDED[:3], RUNNING, FAILED, connections=[Connection(2, "close"), Connection(3)])
    out = run_cli("runs", "watch", RUN_ID, env=_port(serve(live)))
    assert out.returncode == 1
    assert "step failed    plan/review  0.9s  error=BudgetExceededError" in out.stdout


def test_reconnects_with_last_event_id_after_a_clean_end_and_after_a_drop(serve: Any) -> None:
    live = LiveApp(RECORDED, RUNNING, DONE,
                   connections=[Connection(3, "close"), Connection(6, "drop"), Connection(10**9)])
    out = run_cli("runs", "watch", RUN_ID, env=_port(serve(live)))
    assert out.returncode == 0, out.stderr
    # A drop may lose what was in flight: the next connection resumes after the last event that arrived
    # (and one that fails before its first event is tried again from the same place).
    assert live.seen_last_ids[:2] == [None, "3"] and len(live.seen_last_ids) >= 3, out.stderr
    later = [int(x or 0) for x in live.seen_last_ids[2:]]
    assert later == sorted(later) and all(3 <= x <= 6 for x in later)
    assert _agent_lines(out.stdout) == EXPECTED_LINES  # every event once, in order
    # The stream's own end (every 300 s) reconnects silently; a dropped connection is said once, and its return.
    assert out.stderr.count("lost the live stream") == 1 and "live stream back" in out.stderr
    assert out.stdout.count("step started") == 1 and out.stdout.count("step completed") == 1


def test_watch_json_prints_one_event_per_line(serve: Any) -> None:
    live = LiveApp(RECORDED, RUNNING, DONE, connections=[Connection(4, "close"), Connection(10**9)])
    out = run_cli("runs", "watch", RUN_ID, "--json", env=_port(serve(live)))
    assert out.returncode == 0, out.stderr
    lines = jsonl(out.stdout)
    agents = [x["data"] for x in lines if x["event"] == "agent"]
    assert [a["seq"] for a in agents] == list(range(1, 11)) and agents == RECORDED
    runs = [x["data"]["status"] for x in lines if x["event"] == "run"]
    assert runs[0] == "Running" and runs[-1] == "Completed"
    assert lines[-1]["event"] == "end" and lines[-1]["data"]["status"] == "Completed"
    assert lines[-1]["data"]["output"] == {"ok": True}


def test_run_wait_off_a_terminal_prints_steps_and_agent_lines_on_stderr(serve: Any) -> None:
    live = LiveApp(RECORDED, RUNNING, DONE, connections=[Connection(5, "close"), Connection(10**9)])
    out = run_cli("workflows", "run", "review", "--input", '{"pr": 7}', "--wait", env=_port(serve(live)))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"ok": True}  # stdout keeps the run's output alone
    lines = out.stderr.splitlines()
    assert lines[0] == f"run {RUN_ID} started; waiting"
    assert lines[1] == "step started   plan/review  phase=plan"
    assert _agent_lines(out.stderr) == EXPECTED_LINES
    assert lines[-1] == "step completed plan/review  4.2s"
    assert live.started == [{"workflow": "review", "input": {"pr": 7}}]


def test_an_app_server_without_the_live_route_is_polled_and_says_so_once(serve: Any) -> None:
    live = LiveApp(RECORDED, RUNNING, FAILED, live=False, polls_until_final=3)
    out = run_cli("workflows", "run", "review", "--wait", env=_port(serve(live)))
    assert out.returncode == 1
    assert out.stderr.count("has no live stream") == 1 and "following the run by polling" in out.stderr
    assert "step started   plan/review" in out.stderr
    assert "step failed    plan/review  0.9s  error=BudgetExceededError" in out.stderr
    assert _agent_lines(out.stderr) == [] and live.gets >= 4
    watched = run_cli("runs", "watch", RUN_ID, env=_port(serve(LiveApp([], RUNNING, DONE, live=False))))
    assert watched.returncode == 0 and "has no live stream" in watched.stderr
    assert f"run {RUN_ID} completed" in watched.stdout


def test_timeout_and_unknown_run_and_bearer(serve: Any) -> None:
    quiet = LiveApp(RECORDED[:2], RUNNING, DONE, connections=[Connection(2, "quiet")])
    out = run_cli("workflows", "run", "review", "--wait", "--timeout", "1.5", env=_port(serve(quiet)))
    assert out.returncode == 1  # the keepalives do not keep it waiting past the deadline
    assert "did not finish within 1.5s (it is Running)" in out.stderr
    assert f"fix: it keeps running; follow it with 'agentcmd runs watch {RUN_ID}'" in out.stderr
    assert _agent_lines(out.stderr) == EXPECTED_LINES[:2]

    url = serve(LiveApp(RECORDED, DONE, DONE))
    out = run_cli("runs", "watch", "01NOSUCHRUN", env=_port(url))
    assert out.returncode == 1 and "error: no run 01NOSUCHRUN" in out.stderr

    key = generate_signing_key()
    guarded = LiveApp(RECORDED, DONE, DONE, bearer=f"Bearer {hash_signing_key(key)}")
    url = serve(guarded)
    out = run_cli("runs", "watch", RUN_ID, env=_port(url))
    assert out.returncode != 0 and "needs a bearer" in out.stderr
    out = run_cli("runs", "watch", RUN_ID, env={**_port(url), "INNGEST_SIGNING_KEY": key})
    assert out.returncode == 0, out.stderr
    assert _agent_lines(out.stdout) == EXPECTED_LINES


def test_on_a_terminal_watch_shows_the_transcript_and_the_step_table(serve: Any) -> None:
    live = LiveApp(RECORDED, RUNNING, DONE, connections=[Connection(4, "close"), Connection(10**9)])
    url = serve(live)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "agentcmd", "runs", "watch", RUN_ID], stdout=slave,
                            stderr=subprocess.PIPE, env={**os.environ, **_port(url), "COLUMNS": "120",
                                                         "TERM": "xterm"})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    screen = b"".join(chunks).decode(errors="replace")
    assert "the failing test." in screen and "Bash" in screen and "ls -la" in screen
    assert "Fixed: [bold]the test[/] passes." in screen  # an agent's text is never taken as markup
    assert "cost=$0.0123" in screen and "plan/review" in screen and "Completed" in screen
