"""The ``fake_agents`` fixture: fake ``claude``, ``codex`` and ``gemini`` first on PATH.

The fakes (``tests/fakes/bin/*``, behaviour in ``tests/fakes/fakeagent.py``) print each
CLI's real streaming format (claude ``stream-json``, codex ``exec --json``, gemini
``stream-json``) or the old one-shot output, and record every call. Use::

    def test_x(fake_agents):
        fake_agents.scenario("slow")                      # a built-in: normal, error, slow, fail, hang, many
        fake_agents.scenario({"steps": [{"text": "hi"}], "result": "ok",
                              "usage": {"input_tokens": 10, "output_tokens": 2}})   # or your own
        hold = fake_agents.hold()                         # the fakes wait before their result ...
        ...                                               # ... look at the live stream here ...
        fake_agents.release()                             # ... then let them finish
        fake_agents.set(FAKE_AGENT_DELAY="0.05")          # any other variable of the fakes
        fake_agents.no_stream()                           # an old version without streaming
        [call] = fake_agents.calls()                      # {"agent","argv","stdin","cwd","pid","prompt",...}

The variables are set with ``monkeypatch`` (this process and its children: an app server
started in-process passes them on to the agent it runs). For a child started with an
explicit environment, add ``fake_agents.env()`` to it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BIN = Path(__file__).resolve().parent.parent / "fakes" / "bin"
FAKES_BIN = BIN
"""The fake CLIs' directory (put it first on PATH of a child started with its own environment)."""


class FakeAgents:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dir = tmp
        self.bin = BIN
        self.log = tmp / "agent-calls.jsonl"
        self._mp = monkeypatch
        self._vars: dict[str, str] = {}
        self._hold = tmp / "release"
        self.set(FAKE_AGENT_LOG=str(self.log))
        monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")

    def set(self, **variables: str) -> None:
        """Set ``FAKE_AGENT_*`` (or any) variables for the fakes."""
        for key, value in variables.items():
            self._vars[key] = value
            self._mp.setenv(key, value)

    def unset(self, *names: str) -> None:
        for name in names:
            self._vars.pop(name, None)
            self._mp.delenv(name, raising=False)

    def scenario(self, scenario: str | dict[str, Any]) -> None:
        """A built-in scenario name, or a scenario dict (written to a JSON file)."""
        if isinstance(scenario, dict):
            path = self.dir / f"scenario-{len(list(self.dir.glob('scenario-*.json')))}.json"
            path.write_text(json.dumps(scenario))
            scenario = str(path)
        self.set(FAKE_AGENT_SCENARIO=scenario)

    def hold(self) -> Path:
        """Make the fakes wait before their final result until ``release()``."""
        self._hold.unlink(missing_ok=True)
        self.set(FAKE_AGENT_HOLD=str(self._hold))
        return self._hold

    def release(self) -> None:
        self._hold.write_text("go")

    def no_stream(self, on: bool = True) -> None:
        """Act like an old CLI version that rejects the streaming flag."""
        if on:
            self.set(FAKE_AGENT_NO_STREAM="1")
        else:
            self.unset("FAKE_AGENT_NO_STREAM")

    def env(self) -> dict[str, str]:
        """The variables to add to a child's explicit environment (PATH included)."""
        return {**self._vars, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@pytest.fixture
def fake_agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAgents]:
    """Fake agent CLIs first on PATH; see the module docstring."""
    (tmp_path / "fake-agents").mkdir(exist_ok=True)
    agents = FakeAgents(tmp_path / "fake-agents", monkeypatch)
    yield agents
    agents.release()  # never leave a held fake waiting
