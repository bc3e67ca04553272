"""Per-step agent options: one typed set of options, mapped to each agent CLI's own flags.

``step.agent(..., permission_mode=, allowed_tools=, disallowed_tools=,
mcp_config=, append_system_prompt=, max_turns=, model=, extra_args=)``
means the same thing whichever CLI runs the step, but the CLIs do not all
have every knob. ``FLAGS`` is the one table of what each option becomes
for claude, codex and gemini (docs/workflows.md "Agent options" shows it);
``None`` there means the CLI has no such flag, and asking for it is an
``UnsupportedAgentOptionError`` rather than a silently ignored option.

The check runs twice: when the workflow file is imported
(``check_workflow_source`` reads the body's source for ``step.agent``
calls whose ``agent=`` is a literal, so a load error names the file, the
step and the option before any run starts), and again when the step runs
(where the values are known, the MCP config file must exist).

Values never become options by accident: a tool name, mode or extra value
that the CLI would read as a flag (starting with ``-``) is refused, and
``extra_args`` stays a list of arguments (no shell ever sees it).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agentcmd.errors import WorkflowDefinitionError

AGENTS = ("claude", "codex", "gemini")

OPTION_NAMES = ("permission_mode", "allowed_tools", "disallowed_tools", "mcp_config",
                "append_system_prompt", "max_turns", "model", "extra_args")

PERMISSION_MODES: dict[str, tuple[str, ...]] = {
    # claude --permission-mode choices
    "claude": ("default", "acceptEdits", "plan", "bypassPermissions", "dontAsk"),
    # codex exec --sandbox values, plus its --full-auto preset (workspace-write, no approval prompts)
    "codex": ("read-only", "workspace-write", "danger-full-access", "full-auto"),
    # gemini --approval-mode choices
    "gemini": ("default", "auto_edit", "yolo", "plan"),
}

FLAGS: dict[str, dict[str, str | None]] = {
    "permission_mode": {"claude": "--permission-mode MODE", "codex": "--sandbox MODE (full-auto: --full-auto)",
                        "gemini": "--approval-mode MODE"},
    "allowed_tools": {"claude": "--allowedTools A,B", "codex": None, "gemini": "--allowed-tools A,B"},
    "disallowed_tools": {"claude": "--disallowedTools A,B", "codex": None, "gemini": None},
    "mcp_config": {"claude": "--mcp-config FILE", "codex": None, "gemini": None},
    "append_system_prompt": {"claude": "--append-system-prompt TEXT",
                             "codex": "-c developer_instructions=\"TEXT\"", "gemini": None},
    "max_turns": {"claude": "--max-turns N", "codex": None, "gemini": None},
    "model": {"claude": "--model M", "codex": "--model M", "gemini": "--model M"},
    "extra_args": {"claude": "as given", "codex": "as given", "gemini": "as given"},
}
"""Option -> agent -> the flag it becomes, or None where that CLI has no such flag."""

_WHY_NOT: dict[tuple[str, str], str] = {
    ("allowed_tools", "codex"): "codex has no per-run tool list; choose its sandbox with permission_mode",
    ("disallowed_tools", "codex"): "codex has no per-run tool list; choose its sandbox with permission_mode",
    ("disallowed_tools", "gemini"): "gemini reads excluded tools only from its settings.json (tools.exclude)",
    ("mcp_config", "codex"): "codex reads MCP servers from its config.toml ([mcp_servers])",
    ("mcp_config", "gemini"): "gemini reads MCP servers from its settings.json (mcpServers)",
    ("append_system_prompt", "gemini"): "gemini can only replace its system prompt (GEMINI_SYSTEM_MD)",
    ("max_turns", "codex"): "codex exec has no turn limit; bound the step with timeout= or max_cost_usd=",
    ("max_turns", "gemini"): "gemini reads its turn limit only from settings.json (model.maxSessionTurns)",
}


class UnsupportedAgentOptionError(WorkflowDefinitionError):
    """A ``step.agent`` option the chosen agent CLI has no flag for (e.g. ``max_turns`` with codex).

    Raised when the workflow file is imported (the step's ``agent=`` is a
    literal) and again when the step runs; agentcmd never drops an option
    silently.
    """

    code = "unsupported_agent_option"
    fix_hint = "remove the option for this agent, or pick an agent that supports it (docs/workflows.md)"


class AgentOptionValueError(WorkflowDefinitionError):
    """A ``step.agent`` option with a value the agent CLI would refuse or misread.

    A permission mode outside the CLI's own list, tools that are not a list
    of names, a value starting with ``-``, a max_turns that is not a
    positive integer, an MCP config file that does not exist.
    """

    code = "invalid_agent_option"
    fix_hint = "correct the option's value (docs/workflows.md \"Agent options\")"


@dataclasses.dataclass(frozen=True)
class AgentOptions:
    """The typed per-step options of ``step.agent``; ``None`` means "the CLI's default"."""

    permission_mode: str | None = None
    allowed_tools: tuple[str, ...] | None = None
    disallowed_tools: tuple[str, ...] | None = None
    mcp_config: str | None = None
    append_system_prompt: str | None = None
    max_turns: int | None = None
    model: str | None = None
    extra_args: tuple[str, ...] | None = None

    @classmethod
    def build(cls, **values: Any) -> AgentOptions:
        """Options from ``step.agent``'s keyword arguments; lists become tuples, types are checked."""
        unknown = sorted(set(values) - set(OPTION_NAMES))
        if unknown:
            raise TypeError(f"unknown agent options: {', '.join(unknown)}")
        fields: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            if name in ("allowed_tools", "disallowed_tools", "extra_args"):
                fields[name] = _string_list(name, value)
            elif name == "max_turns":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise _bad(f"max_turns must be a positive integer, got {value!r}", "e.g. max_turns=10")
                fields[name] = value
            elif name == "mcp_config":
                if not isinstance(value, str | Path) or not str(value).strip():
                    raise _bad(f"mcp_config must be a file path, got {value!r}",
                               'e.g. mcp_config=".mcp.json" (relative to the step\'s cwd)')
                fields[name] = str(value)
            else:
                if not isinstance(value, str) or not value.strip():
                    raise _bad(f"{name} must be a non-empty string, got {value!r}", f"pass {name} as text")
                fields[name] = value
        return cls(**fields)

    def given(self) -> list[str]:
        """The names of the options that are set."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]


def _unsupported(agent: str, name: str) -> UnsupportedAgentOptionError:
    supported = [a for a in AGENTS if FLAGS[name][a] is not None]
    return UnsupportedAgentOptionError(
        f"step.agent: {agent} does not support the option {name} ({_WHY_NOT[(name, agent)]})",
        f"remove {name}= from this step, or run it with agent= one of {', '.join(supported)}")


def _bad(what: str, fix: str) -> AgentOptionValueError:
    return AgentOptionValueError(f"step.agent: {what}", fix)


def _string_list(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        example = '["Read", "Bash(git diff:*)"]' if name != "extra_args" else '["--verbose"]'
        raise _bad(f"{name} must be a list of strings, got {value!r}", f"e.g. {name}={example}")
    return tuple(value)


def check_options(agent: str, opts: AgentOptions, *, cwd: Path | None = None) -> None:
    """Refuse an option ``agent`` does not support, or a value it would misread.

    ``cwd`` is the step's working directory; when given, ``mcp_config`` must
    name an existing file there (relative paths are taken from it).
    """
    if agent not in AGENTS:
        return  # get_adapter reports unknown agents with their own error
    for name in opts.given():
        if FLAGS[name][agent] is None:
            raise _unsupported(agent, name)
    mode = opts.permission_mode
    if mode is not None and mode not in PERMISSION_MODES[agent]:
        raise _bad(f"permission_mode {mode!r} is not one of {agent}'s modes "
                   f"({', '.join(PERMISSION_MODES[agent])})", f"use one of: {', '.join(PERMISSION_MODES[agent])}")
    for name in ("allowed_tools", "disallowed_tools"):
        for tool in getattr(opts, name) or ():
            if not tool.strip() or tool.startswith("-") or "," in tool:
                raise _bad(f"{name} entry {tool!r} is empty, starts with '-' or holds a comma",
                           "give one tool name (or pattern such as 'Bash(git diff:*)') per list entry")
    for name in ("model", "mcp_config"):
        value = getattr(opts, name)
        if value is not None and value.startswith("-"):
            raise _bad(f"{name} {value!r} starts with '-' (it would be read as an option)", f"pass a real {name}")
    if opts.mcp_config is not None and cwd is not None:
        path = Path(opts.mcp_config)
        path = path if path.is_absolute() else cwd / path
        if not path.is_file():
            raise _bad(f"mcp_config file {str(path)!r} does not exist",
                       "create the MCP config file or give its path relative to the step's cwd")


def option_flags(agent: str, opts: AgentOptions, *, cwd: Path | None = None) -> list[str]:
    """The flags for ``agent`` that carry ``opts`` (they go before the prompt); checks first.

    Every flag takes its value as the next argument and is followed by more
    options or ``--``: claude's variadic tool lists get one comma-separated
    value, so a following argument is never swallowed.
    """
    check_options(agent, opts, cwd=cwd)
    out: list[str] = []
    if opts.model is not None:
        out += ["--model", opts.model]
    if opts.permission_mode is not None:
        if agent == "claude":
            out += ["--permission-mode", opts.permission_mode]
        elif agent == "codex":
            out += ["--full-auto"] if opts.permission_mode == "full-auto" else ["--sandbox", opts.permission_mode]
        else:
            out += ["--approval-mode", opts.permission_mode]
    if opts.allowed_tools is not None:
        out += ["--allowedTools" if agent == "claude" else "--allowed-tools", ",".join(opts.allowed_tools)]
    if opts.disallowed_tools is not None:
        out += ["--disallowedTools", ",".join(opts.disallowed_tools)]
    if opts.mcp_config is not None:
        path = Path(opts.mcp_config)
        out += ["--mcp-config", str(path if path.is_absolute() or cwd is None else cwd / path)]
    if opts.append_system_prompt is not None:
        if agent == "claude":
            out += ["--append-system-prompt", opts.append_system_prompt]
        else:  # codex: a -c override is parsed as TOML; a JSON string is a valid TOML basic string
            out += ["-c", "developer_instructions=" + json.dumps(opts.append_system_prompt, ensure_ascii=False)]
    if opts.max_turns is not None:
        out += ["--max-turns", str(opts.max_turns)]
    out += list(opts.extra_args or ())
    return out


# Import-time check -----------------------------------------------------------------------------

def check_workflow_source(workflow_id: str, body: Callable[..., Any]) -> None:
    """Refuse, when the workflow is defined, ``step.agent`` calls with options their agent lacks.

    Reads the body's source (``ast``): every ``<step>.agent(...)`` call
    whose ``agent=`` is a literal (or absent: claude) has its options
    checked; literal values are checked too. A body whose source cannot be
    read (built at run time, a REPL) is left to the run-time check.
    """
    try:
        source = textwrap.dedent(inspect.getsource(body))
        first_line = inspect.getsourcelines(body)[1]
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return
    params = [p for p in inspect.signature(body).parameters]
    step_name = params[1] if len(params) > 1 else "step"
    where = inspect.getsourcefile(body) or "<workflow>"
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "agent"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == step_name):
            continue
        _check_call(workflow_id, node, where, first_line + node.lineno - 1)


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _check_call(workflow_id: str, call: ast.Call, where: str, line: int) -> None:
    keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
    agent: Any = "claude"
    if "agent" in keywords:
        known, agent = _literal(keywords["agent"])
        if not known or not isinstance(agent, str):
            return
    step_node = call.args[0] if call.args else keywords.get("step_id")
    known, step_id = _literal(step_node) if step_node is not None else (False, None)
    step_id = step_id if known else "?"
    known_values: dict[str, Any] = {}
    try:
        for name in OPTION_NAMES:
            if name not in keywords:
                continue
            known, value = _literal(keywords[name])
            if known and value is None:
                continue
            if agent in AGENTS and FLAGS[name][agent] is None:
                raise _unsupported(agent, name)
            if known:
                known_values[name] = value
        check_options(agent, AgentOptions.build(**known_values))
    except WorkflowDefinitionError as err:
        raise type(err)(f"workflow {workflow_id!r}, step {step_id!r} ({where}, line {line}): "
                        f"{err.what.removeprefix('step.agent: ')}", err.fix) from None
