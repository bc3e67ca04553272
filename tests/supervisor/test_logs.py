"""Output formats: plain for pipes, Rich colours for terminals, JSON for machines."""

from __future__ import annotations

import io
import json

import pytest

from agentcmd.supervisor.logs import LogSink


def test_plain_prefixes_child_lines_and_marks_warnings() -> None:
    out = io.StringIO()
    sink = LogSink("plain", out)
    sink.child_line("app", "hello")
    sink.child_line("engine", "world")
    sink.info("ready")
    sink.warning("careful")
    assert out.getvalue().splitlines() == ["app    │ hello", "engine │ world", "ready", "warning: careful"]


def test_auto_is_plain_when_not_a_terminal() -> None:
    assert LogSink("auto", io.StringIO()).format == "plain"


def test_rich_colours_the_prefix_and_leaves_the_childs_text_alone() -> None:
    out = io.StringIO()
    sink = LogSink("rich", out)
    sink.child_line("engine", "[bold]not markup[/bold]")
    text = out.getvalue()
    assert "\x1b[" in text and "engine │ " in text and "[bold]not markup[/bold]" in text


def test_json_lines_carry_source_level_and_fields() -> None:
    out = io.StringIO()
    sink = LogSink("json", out)
    sink.info("ready in 0.5 s", ready_seconds=0.5)
    sink.child_line("app", "hi")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["source"] == "agentcmd" and first["level"] == "info" and first["ready_seconds"] == 0.5
    assert second == {"ts": second["ts"], "source": "app", "message": "hi"}


def test_an_unknown_format_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown log format"):
        LogSink("xml", io.StringIO())


def test_auto_is_rich_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    sink = LogSink("auto", out)
    sink.child_line("app", "hello")
    assert sink.format == "rich" and "\x1b[" in out.getvalue() and "app    │ hello" in out.getvalue()
