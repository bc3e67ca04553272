"""Agent CLI adapters: how to ask claude, codex or gemini one question non-interactively.

Each adapter turns (prompt, model, resume) into an argv. Streaming mode is
the default (``stream=True``): claude ``-p --output-format stream-json
--verbose``, codex ``exec --json``, gemini ``--output-format stream-json``;
the output is read line by line as it arrives by ``new_parser()``
(``agentstream.py``). The old one-shot mode stays for CLI versions without
streaming: ``parse`` turns its stdout into ``(text, parsed_json,
session_id)`` (claude prints one JSON object with ``--output-format json``;
the others are read as plain text, and stdout that happens to be JSON is
parsed anyway). ``rejected_streaming`` recognises an old version refusing
the streaming flag; ``no_streaming``/``mark_no_streaming`` remember that per
executable for the life of the process (logged once).

The executable comes from ``settings.agents[name].path`` when set, else
from ``PATH``; a missing one is an ``AgentNotFoundError`` that says how to
fix it. Extra arguments from ``settings.agents[name].args`` go before the
prompt.

A prompt often carries workflow input, so it can never be read as an
option: claude and codex get ``--`` before the positional prompt (both
parse the end of options the usual way), gemini gets ``--prompt=<text>``
(yargs keeps a value joined by ``=`` whole), and a prompt too long for one
argument goes to claude's stdin. A model or session id starting with ``-``
is refused (``AgentArgumentError``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentcmd.errors import AgentcmdError
from agentcmd.workflows.agentstream import StreamParser, new_parser

log = logging.getLogger("agentcmd.agents")

ARGV_PROMPT_LIMIT = 100_000
"""Bytes of prompt passed as one argument; Linux refuses a single argument over 128 KiB (E2BIG)."""


class PromptTooLongError(AgentcmdError):
    """A prompt too long for the agent CLI's argument list (and the agent cannot read it from stdin)."""

    code = "prompt_too_long"
    exit_code = 2
    http_status = 400
    fix_hint = "shorten the prompt, or put the long part in a file and name the file in the prompt"


class AgentArgumentError(AgentcmdError):
    """A ``step.agent`` argument (model, session id) that is empty or would be read as an option."""

    code = "invalid_agent_argument"
    exit_code = 2
    http_status = 400
    fix_hint = "pass the value the agent CLI printed or documents"


class UnknownAgentError(AgentcmdError):
    """``step.agent`` names an agent agentcmd has no adapter for."""

    code = "unknown_agent"
    exit_code = 2
    fix_hint = "use one of the agents docs/workflows.md lists"


def _check_value(what: str, value: str | None) -> None:
    if value is not None and (not value or value.startswith("-")):
        raise AgentArgumentError(f"step.agent: {what} {value!r} is empty or starts with '-' (it would be read "
                                 "as an option)", f"pass the {what} the agent CLI printed or documents")


class AgentNotFoundError(AgentcmdError):
    """The agent's CLI is not installed (not on PATH, nor where its override variable points)."""

    code = "agent_not_found"
    exit_code = 2
    http_status = 400
    fix_hint = "install the agent's CLI where the app server runs, or set its path override variable"


@dataclass(frozen=True)
class AgentAdapter:
    """One agent CLI: its executable name and how to call and read it."""

    name: str
    executable: str
    json_output: bool

    def command(self, exe: str, prompt: str, *, model: str | None, resume: str | None,
                extra: Sequence[str] = (), stream: bool = False) -> tuple[list[str], bytes | None]:
        """(argv, stdin): a long prompt goes through stdin where the CLI reads it from there."""
        _check_value("model", model)
        _check_value("session id (resume)", resume)
        if len(prompt.encode()) <= ARGV_PROMPT_LIMIT:
            return self.argv(exe, prompt, model=model, resume=resume, extra=extra, stream=stream), None
        if self.name != "claude":
            raise PromptTooLongError(
                f"the prompt for {self.name} is {len(prompt.encode())} bytes, more than one command-line "
                f"argument can hold ({ARGV_PROMPT_LIMIT})",
                "write the details to a file in the workspace and ask the agent to read it")
        # 'claude -p' without a prompt argument reads the prompt from stdin.
        return self.argv(exe, None, model=model, resume=resume, extra=extra, stream=stream), prompt.encode()

    def argv(self, exe: str, prompt: str | None, *, model: str | None, resume: str | None,
             extra: Sequence[str] = (), stream: bool = False) -> list[str]:
        """The command line; ``prompt=None`` (claude only) leaves the prompt to stdin."""
        flags = list(STREAM_FLAGS[self.name]) if stream else []
        if self.name == "claude":
            argv = [exe, *extra, "-p", *(flags or ["--output-format", "json"])]
            if model:
                argv += ["--model", model]
            if resume:
                argv += ["--resume", resume]
            return argv + (["--", prompt] if prompt is not None else [])
        if self.name == "codex":
            argv = [exe, "exec", *extra, *flags]   # exec's options go before its resume subcommand
            if model:
                argv += ["--model", model]
            if resume:
                argv += ["resume", resume]
            return [*argv, "--", prompt or ""]
        # gemini
        argv = [exe, *extra, *flags]
        if model:
            argv += ["--model", model]
        if resume:
            argv += ["--resume", resume]
        return [*argv, f"--prompt={prompt or ''}"]

    def parse(self, stdout: str) -> tuple[str, Any, str | None]:
        """Return (text, parsed JSON or None, session id or None)."""
        parsed = _parse_json(stdout)
        if isinstance(parsed, dict):
            text = parsed.get("result")
            if not isinstance(text, str):
                text = parsed.get("response") if isinstance(parsed.get("response"), str) else None
            session = parsed.get("session_id") or parsed.get("sessionId")
            return (text if text is not None else stdout.strip(), parsed,
                    str(session) if session else None)
        return stdout.strip(), parsed, None

    def new_parser(self) -> StreamParser:
        """A parser for one streaming run of this CLI."""
        return new_parser(self.name)

    def rejected_streaming(self, exit_code: int, stderr: str, parsed_events: int) -> bool:
        """Whether a run failed because this CLI version does not know the streaming flag.

        An old version exits non-zero at once with its argument parser's
        complaint (commander "unknown option", clap "unexpected argument",
        yargs "Unknown arguments"/"Invalid values") naming the flag or its
        value, before printing any stream event.
        """
        if exit_code == 0 or parsed_events:
            return False
        text = stderr.lower()
        return bool(_REJECTION.search(text)) and any(m in text for m in STREAM_MARKERS[self.name])


STREAM_FLAGS: dict[str, tuple[str, ...]] = {
    "claude": ("--output-format", "stream-json", "--verbose"),
    "codex": ("--json",),
    "gemini": ("--output-format", "stream-json"),
}
"""The flags that make each CLI print one JSON event per line as it works (before the prompt)."""

STREAM_MARKERS: dict[str, tuple[str, ...]] = {
    "claude": ("output-format", "stream-json", "verbose"),
    "codex": ("--json",),
    "gemini": ("output-format", "outputformat", "stream-json"),
}
_REJECTION = re.compile(r"unknown (option|argument)|unexpected argument|unrecogni[sz]ed|invalid (value|choice|argument)"
                        r"|not a valid|did you mean|no such option")

_no_streaming: set[str] = set()
_no_streaming_lock = threading.Lock()


def no_streaming(exe: str) -> bool:
    """Whether ``exe`` was found to lack streaming earlier in this process."""
    return exe in _no_streaming


def mark_no_streaming(name: str, exe: str, stderr: str) -> None:
    """Remember that ``exe`` rejects the streaming flag; log it once per executable."""
    with _no_streaming_lock:
        if exe in _no_streaming:
            return
        _no_streaming.add(exe)
    first = next((ln.strip() for ln in stderr.splitlines() if ln.strip()), "")
    log.warning("%s at %s does not support streaming output (%s: %s); running it without live output "
                "from now on. Update the CLI to see its work live.", name, exe, " ".join(STREAM_FLAGS[name]),
                first[:200])


def forget_no_streaming() -> None:
    """Forget what was learnt about executables (tests; a CLI updated in place)."""
    with _no_streaming_lock:
        _no_streaming.clear()


ADAPTERS: dict[str, AgentAdapter] = {
    "claude": AgentAdapter("claude", "claude", json_output=True),
    "codex": AgentAdapter("codex", "codex", json_output=False),
    "gemini": AgentAdapter("gemini", "gemini", json_output=False),
}


def _parse_json(stdout: str) -> Any:
    text = stdout.strip()
    if not text or text[0] not in "[{":
        return None
    try:
        return json.loads(text)
    except ValueError:
        # Some CLIs print JSON lines; the last complete object is the result.
        for line in reversed(text.splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                continue
        return None


def get_adapter(name: str) -> AgentAdapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise UnknownAgentError(f"unknown agent {name!r}", f"use one of: {', '.join(sorted(ADAPTERS))}") from None


def resolve_executable(name: str) -> tuple[str, list[str]]:
    """Find agent ``name``'s executable and extra args (settings first, then PATH)."""
    from agentcmd.config import load_settings

    adapter = get_adapter(name)
    config = load_settings().agents.get(name)
    extra = list(config.args) if config else []
    if config and config.path:
        path = os.path.expanduser(config.path)
        found = shutil.which(path) if os.sep not in path else (path if os.access(path, os.X_OK) else None)
        if not found:
            raise AgentNotFoundError(f"agent CLI {name!r} not found at agents.{name}.path = {config.path}",
                                     f"install {name} or set agents.{name}.path to its executable")
        return found, extra
    found = shutil.which(adapter.executable)
    if not found:
        raise AgentNotFoundError(f"agent CLI {name!r} ({adapter.executable}) is not on PATH",
                                 f"install {name} or set agents.{name}.path "
                                 f"(AGENTCMD_AGENTS__{name.upper()}__PATH or config.json)")
    return found, extra
