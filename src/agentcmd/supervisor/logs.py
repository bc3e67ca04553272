"""Where the supervisor's and the children's lines go.

One sink, three formats: ``plain`` (``engine │ line``; for pipes and log
files), ``rich`` (the same with colours, for a terminal) and ``json`` (one
object per line, for machines). ``auto`` picks rich on a TTY, plain
otherwise. Lines arrive from several reader threads, so every write holds
one lock: a line is never interleaved with another.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

Level = Literal["info", "warning", "error"]
_SOURCE_WIDTH = 6  # len("engine"): keeps the bars of "app" and "engine" aligned
_STYLES = {"engine": "cyan", "app": "magenta"}
_LEVEL_STYLES = {"info": "bold", "warning": "bold yellow", "error": "bold red"}


class LogSink:
    """Thread-safe output of supervisor messages and prefixed child lines."""

    def __init__(self, fmt: str = "auto", stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        explicit_rich = fmt == "rich"
        if fmt == "auto":
            fmt = "rich" if _isatty(self.stream) else "plain"
        if fmt not in ("plain", "rich", "json"):
            raise ValueError(f"unknown log format {fmt!r}")
        self.format = fmt
        self._lock = threading.Lock()
        self._console: Any = None
        if fmt == "rich":
            from rich.console import Console  # lazy: only a terminal pays for Rich

            # Asked for by name, colours are wanted even through a pipe (e.g. into `less -R`).
            self._console = Console(file=self.stream, highlight=False, soft_wrap=True,
                                    force_terminal=True if explicit_rich else None)

    def child_line(self, source: str, line: str) -> None:
        """One line of a child's output, prefixed with the child's name."""
        with self._lock:
            if self.format == "json":
                self._json(_child_json(source, line))
            elif self.format == "rich":
                from rich.text import Text

                text = Text(f"{source:<{_SOURCE_WIDTH}} │ ", style=_STYLES.get(source, "blue"))
                text.append(line)
                self._console.print(text)
            else:
                self._write(f"{source:<{_SOURCE_WIDTH}} │ {line}")

    def info(self, message: str, **fields: Any) -> None:
        self._say("info", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._say("warning", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._say("error", message, fields)

    def _say(self, level: Level, message: str, fields: dict[str, Any]) -> None:
        with self._lock:
            if self.format == "json":
                self._json({"source": "agentcmd", "level": level, "message": message, **fields})
                return
            prefix = "" if level == "info" else f"{level}: "
            if self.format == "rich":
                from rich.text import Text

                self._console.print(Text(prefix + message, style=_LEVEL_STYLES[level]))
            else:
                self._write(prefix + message)

    def _json(self, obj: dict[str, Any]) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._write(json.dumps({"ts": stamp, **obj}, ensure_ascii=False, default=str))

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # stdout closed (piped into `head`, terminal gone): keep supervising, stop printing


def _child_json(source: str, line: str) -> dict[str, Any]:
    """A child's line as a JSON object: its own object when it wrote JSON (run ids kept), else the text."""
    if line.startswith("{") and line.endswith("}"):
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            return {"source": source, **{k: v for k, v in obj.items() if k not in ("ts", "source")}}
    return {"source": source, "message": line}


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
