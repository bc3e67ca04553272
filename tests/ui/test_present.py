"""The workflow run page's presentation, as pure functions over the app API's run view."""

from __future__ import annotations

from typing import Any

import pytest

from agentcmd.ui.present import artifacts, phase_progress, step_detail, tail


def view(status: str, phase: str | None, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"status": status, "phase": phase, "phases": ["plan", "build", "ship"], "steps": steps}


def s(phase: str | None, name: str = "x", output: Any = None) -> dict[str, Any]:
    return {"id": name, "phase": phase, "status": "Completed", "output": output,
            "started_at": "2026-01-01T00:00:00.000Z", "ended_at": "2026-01-01T00:00:02.500Z"}


@pytest.mark.parametrize(("status", "phase", "steps", "states"), [
    ("Running", None, [], ["pending", "pending", "pending"]),
    ("Running", "plan", [s("plan")], ["current", "pending", "pending"]),
    ("Running", "build", [s("plan"), s("build")], ["done", "current", "pending"]),
    ("Running", "ship", [s("ship")], ["skipped", "skipped", "current"]),
    ("Failed", "build", [s("plan"), s("build")], ["done", "failed", "pending"]),
    ("Cancelled", "plan", [s("plan")], ["cancelled", "pending", "pending"]),
    ("Completed", "build", [s("plan"), s("build")], ["done", "done", "done"]),
])
def test_phase_states(status: str, phase: str | None, steps: list[dict[str, Any]], states: list[str]) -> None:
    assert [p["state"] for p in phase_progress(view(status, phase, steps))] == states


def test_steps_outside_any_phase_get_their_own_group() -> None:
    groups = phase_progress(view("Running", None, [s(None, "setup")]))
    assert groups[-1]["name"] == "other steps" and [x["id"] for x in groups[-1]["steps"]] == ["setup"]


@pytest.mark.parametrize(("output", "kind", "headline", "tail_text", "exit_code"), [
    ({"command": "make", "exit_code": 2, "stdout": "a\nb\n", "stderr": "boom\n"}, "command", "make", "a\nb\nboom", 2),
    ({"agent": "claude", "model": "opus", "text": "done", "exit_code": 0}, "agent", "claude (opus)", "done", 0),
    ({"artifact": "r.txt", "bytes": 5}, "artifact", "r.txt (5 bytes)", "", None),
    ({"log": "hello"}, "log", "", "hello", None),
    ({"anything": 1}, "value", "", "", None),
])
def test_step_detail_by_output_shape(output: dict[str, Any], kind: str, headline: str, tail_text: str,
                                     exit_code: int | None) -> None:
    d = step_detail(s("plan", output=output))
    assert (d["kind"], d["headline"], d["tail"], d["exit_code"]) == (kind, headline, tail_text, exit_code)
    assert d["duration_ms"] == 2500


def test_a_steps_own_duration_wins_when_the_engine_saw_less() -> None:
    step = {**s("plan", output={"command": "x", "duration_s": 12.5}), "ended_at": "2026-01-01T00:00:00.000Z"}
    assert step_detail(step)["duration_ms"] == 12500


def test_tail_keeps_the_last_lines_and_says_how_many_were_cut() -> None:
    text = "\n".join(str(i) for i in range(100))
    out = tail(text, 3)
    assert out == "… 97 earlier lines\n97\n98\n99"


def test_artifacts_come_from_artifact_steps() -> None:
    v = view("Completed", "ship", [s("ship", "a", {"artifact": "report.md", "bytes": 10, "phase": "ship"}),
                                   s("ship", "b", {"command": "x"})])
    assert artifacts(v) == [{"name": "report.md", "bytes": 10, "phase": "ship"}]
