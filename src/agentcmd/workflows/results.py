"""The values DSL steps return: plain frozen dataclasses that round-trip through JSON.

A step's return value is its memo: the SDK serialises it, the engine stores
it, and on every later call the SDK hands back the stored JSON. So each
result is built from that JSON (``from_json``) and the live run and the
replay see the same object.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self


@dataclasses.dataclass(frozen=True)
class _Result:
    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass(frozen=True)
class CliResult(_Result):
    """``step.cli``: exit code and the tails of both streams (sizes say what was cut)."""

    command: str
    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    duration_s: float = 0.0
    cwd: str | None = None
    phase: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclasses.dataclass(frozen=True)
class AgentResult(_Result):
    """``step.agent``: the answer text, the parsed JSON when the CLI printed any, the session id."""

    agent: str
    text: str
    exit_code: int
    json: Any = None
    session_id: str | None = None
    model: str | None = None
    stderr: str = ""
    duration_s: float = 0.0
    phase: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None
    cost_source: str | None = None
    turns: int = 0
    streamed: bool = False
    events: int = 0
    tool_calls: int = 0
    resumed_session: str | None = None


@dataclasses.dataclass(frozen=True)
class GitResult(_Result):
    """``step.git``: what was done; ``sha``/``branch``/``diff``/``url`` when the action has one."""

    action: str
    ok: bool
    output: str = ""
    sha: str | None = None
    branch: str | None = None
    diff: str | None = None
    url: str | None = None
    path: str | None = None
    committed: bool | None = None
    phase: str | None = None
