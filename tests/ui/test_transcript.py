"""``ui/transcript.py``: a run's kept stream as the entries the run page renders on load."""

from __future__ import annotations

from typing import Any

from agentcmd.ui import present, transcript


def ev(seq: int, kind: str, step: str = "review/look", **fields: Any) -> dict[str, Any]:
    return {"seq": seq, "ts": 1.0, "run_id": "r", "step_id": step, "attempt": 0, "agent": "claude", "kind": kind,
            **fields}


def test_tool_results_fold_into_their_calls_and_usage_is_left_out() -> None:
    events = [ev(1, "session", session_id="s-1"), ev(2, "text", text="Looking"),
              ev(3, "tool_call", tool="Bash", tool_id="t1", summary="pytest -q"),
              ev(4, "usage", usage={"input_tokens": 5}),
              ev(5, "tool_result", tool="Bash", tool_id="t1", status="error", text="1 failed"),
              ev(6, "tool_result", tool="Read", tool_id="unknown", status="ok"),
              ev(7, "error", text="rate limited"), ev(8, "result", status="ok", text="Done.")]
    out = transcript.entries(events)
    assert [e["kind"] for e in out] == ["session", "text", "tool_call", "tool_result", "error", "result"]
    assert out[0]["text"] == "session s-1"
    call = out[2]
    assert call["summary"] == "pytest -q"
    assert call["result"]["status"] == "error" and call["result"]["text"] == "1 failed"
    assert out[3]["tool"] == "Read"  # a result whose call is not kept stands alone
    assert [e["new_step"] for e in out] == [True, False, False, False, False, False]


def test_each_step_is_headed_once_and_a_call_pairs_only_within_its_step() -> None:
    events = [ev(1, "tool_call", step="a", tool="Bash", tool_id="t1", summary="ls"),
              ev(2, "output", step="b", agent=None, text="hello", stream="stdout"),
              ev(3, "tool_result", step="b", tool="Bash", tool_id="t1", status="ok"),
              ev(4, "dropped", step="b", text="3 earlier events (1.0 KiB) dropped: step cap 64 KiB"),
              ev(5, "notice", step="b", text="resuming interrupted session s")]
    out = transcript.entries(events)
    assert [(e["kind"], e["new_step"]) for e in out] == [("tool_call", True), ("output", True),
                                                         ("tool_result", False), ("dropped", False), ("notice", False)]
    assert out[0]["result"] is None


def test_long_text_is_cut_with_a_note() -> None:
    [entry] = transcript.entries([ev(1, "text", text="x" * (transcript.MAX_TEXT + 5))])
    assert entry["text"].endswith("(5 more characters)") and len(entry["text"]) < transcript.MAX_TEXT + 40


def test_running_steps_carry_their_time_so_far() -> None:
    view = {"steps": [{"id": "a", "name": "p/a", "status": "Completed", "elapsed_ms": 5},
                      {"id": "b", "name": "p/b", "status": "Running", "elapsed_ms": 1500},
                      {"id": "c", "name": "p/c", "status": "Running", "elapsed_ms": None}]}
    assert present.running_steps(view) == [{"id": "b", "name": "p/b", "elapsed_ms": 1500},
                                           {"id": "c", "name": "p/c", "elapsed_ms": None}]
