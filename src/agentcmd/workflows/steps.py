"""What a workflow body sees as ``step``: phases, shell, agent, git, sleep, waits, logs.

Every DSL step is one SDK step (``step.run``, ``step.sleep``,
``step.wait_for_event``), so the engine memoises it: on replay the stored
result comes back and the command, agent or git call does not run again.
Results are dataclasses rebuilt from that stored JSON (``results.py``).

Phases: inside ``with step.phase("plan"):`` every step id is recorded as
``plan/<id>``, so the engine's history says which phase each step
belonged to, and a run's current phase is the phase of its last step.

Failures: a command that exits non-zero with ``check=True`` raises inside
the SDK step, so the function's retry policy applies; when retries are
exhausted the body gets ``inngest.StepError``. Errors that retrying cannot
fix (a missing agent CLI, an unknown phase) are ``NonRetriableError``s.
The SDK's own control flow (``ResponseInterrupt``...) subclasses
``BaseException``; nothing here catches ``BaseException``, so it passes
through user ``try/except Exception`` blocks untouched.

Step records: every step body that runs here (``run``, ``cli``, ``agent``,
``git``, ``log``, ``artifact``) is wrapped so the app records when it
started, its command's pid and how it ended (``steprecords.py``); a memo
replay does not run the body and records nothing. A command stopped
because the app server is shutting down ends the step ``interrupted``
(``StepInterruptedError``); the app answers that SDK call 503-interrupted,
so the engine calls the step again when the app is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime
import inspect
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import inngest

from agentcmd.errors import AgentcmdError, StepFailedError
from agentcmd.observe import runlog
from agentcmd.privatefs import write_private_file
from agentcmd.safenames import is_plain_name
from agentcmd.workflows import agentrun, costs, gitops, resumption, steprecords
from agentcmd.workflows.agentopts import AgentOptions, option_flags
from agentcmd.workflows.agents import get_adapter, resolve_executable
from agentcmd.workflows.context import Runtime, WorkflowContext
from agentcmd.workflows.durations import parse_duration
from agentcmd.workflows.parallel import Branch, SdkGroup, run_parallel
from agentcmd.workflows.process import OUTPUT_LIMIT, LineCallback, ProcessResult, run_process, terminate_run
from agentcmd.workflows.results import AgentResult, CliResult, GitResult

if TYPE_CHECKING:
    from agentcmd.workflows.spec import WorkflowSpec

T = TypeVar("T")

AGENT_OUTPUT_LIMIT = 4 * 1024 * 1024
"""An agent's stdout is its answer (often one JSON document): keep all of it up to 4 MiB, not a tail."""


class CommandFailedError(StepFailedError):
    """A ``step.cli`` command exited non-zero with ``check=True`` (retried per policy)."""

    code = "command_failed"
    fix_hint = "read the command's stderr tail in the message; fix the cause, or pass check=False to handle it"


class CommandTimeoutError(StepFailedError):
    """A command ran past its ``timeout=``; its process group was stopped."""

    code = "command_timeout"
    fix_hint = "raise the step's timeout=, or make the command finish sooner"


class AgentFailedError(StepFailedError):
    """An agent CLI exited non-zero or reported an error."""

    code = "agent_failed"
    fix_hint = "read the agent's message; check its login, model and quota"


class StepCancelledError(inngest.NonRetriableError):
    """The run was cancelled while this step's command ran; the command was stopped.

    Outside the ``AgentcmdError`` tree on purpose: the SDK reads ``code``,
    ``name`` and ``message`` of its own error classes (``agentcmd/errors.py``).
    """


class StepInterruptedError(StepFailedError):
    """The app server is shutting down and stopped this step's command; the step runs again later.

    The app answers the SDK call 503-interrupted (``server/shutdown.py``), so
    this never reaches the engine as a failed attempt.
    """

    code = "step_interrupted"
    fix_hint = "nothing to do: the step runs again from its start when the app server is back"


_current_record: contextvars.ContextVar[steprecords.StepRecorder | None] = contextvars.ContextVar(
    "agentcmd_step_record", default=None)


_NO_DEFAULT: Any = object()


def _tail(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def cancelled_steps_file(data_dir: Path, run_id: str) -> Path:
    return data_dir / "runs" / run_id / "cancelled-steps.json"


def read_cancelled_steps(data_dir: Path, run_id: str) -> list[dict[str, Any]]:
    if not is_plain_name(run_id):  # a run id from a URL: never a path out of the runs directory
        return []
    path = cancelled_steps_file(data_dir, run_id)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


class WorkflowSteps:
    """The ``step`` argument of a workflow body (wraps the SDK's ``inngest.Step``)."""

    def __init__(self, sdk_step: inngest.Step, ctx: WorkflowContext, spec: WorkflowSpec,
                 runtime: Runtime, group: SdkGroup | None = None) -> None:
        self.sdk = sdk_step
        self.group = group
        self._ctx = ctx
        self._spec = spec
        self._runtime = runtime
        self._phase: str | None = None

    # Phases and ids ------------------------------------------------------
    @property
    def current_phase(self) -> str | None:
        return self._phase

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Record the steps inside the block as belonging to phase ``name``."""
        if name not in self._spec.phases:
            declared = ", ".join(self._spec.phases) or "none"
            raise inngest.NonRetriableError(
                f"workflow {self._spec.id!r}: unknown phase {name!r} (declared phases: {declared}); "
                f"add it to define_workflow(phases=[...])")
        outer, self._phase = self._phase, name
        try:
            yield
        finally:
            self._phase = outer

    def _sid(self, step_id: str) -> str:
        if not isinstance(step_id, str) or not step_id.strip():
            raise inngest.NonRetriableError(f"step ids must be non-empty strings, got {step_id!r}")
        return f"{self._phase}/{step_id}" if self._phase else step_id

    def _cwd(self, cwd: str | os.PathLike[str] | None) -> Path:
        if cwd is None:
            return self._ctx.workdir
        path = Path(cwd)
        return path if path.is_absolute() else self._ctx.workdir / path

    async def _watch_cancel(self) -> None:
        """Poll the engine while a command runs; stop the command if the run was cancelled.

        This is how a cancel that did not come through this app server
        (``cancel_on`` events, another client) reaches the process group.
        """
        probe = self._runtime.run_status
        if probe is None:
            return
        while True:
            await asyncio.sleep(self._runtime.cancel_poll_seconds)
            with contextlib.suppress(Exception):
                if await probe(self._ctx.run_id) == "Cancelled":
                    terminate_run(self._ctx.run_id)
                    return

    async def _exec(self, command: str | Sequence[str], *, cwd: Path, env: Mapping[str, str] | None,
                    timeout: float | None, step_id: str, stdin: bytes | None = None,
                    limit: int = OUTPUT_LIMIT, on_line: LineCallback | None = None,
                    stop: asyncio.Event | None = None) -> ProcessResult:
        watcher = asyncio.get_running_loop().create_task(self._watch_cancel())
        record = _current_record.get()
        try:
            res = await run_process(command, cwd=cwd, env=env, timeout=timeout, run_id=self._ctx.run_id,
                                    stdin=stdin, limit=limit, on_line=on_line, stop=stop,
                                    on_spawn=record.process_started if record is not None else None)
        finally:
            watcher.cancel()
        if res.cancelled:
            self._record_cancelled(step_id)
            raise StepCancelledError(f"step {step_id!r} was cancelled with its run; its command was stopped")
        if res.interrupted:
            raise StepInterruptedError(f"step {step_id!r} was interrupted: the app server is shutting down; "
                                       "it runs again from its start when the app is back")
        return res

    async def _output_stream(self, sid: str) -> LineCallback | None:
        """``on_line`` keeping a command's output lines in the run's stream (streamlog.py), as they come."""
        from agentcmd.workflows import streamlog

        try:
            log = await streamlog.stream_log(self._runtime.data_dir, self._ctx.run_id).ready()
        except (streamlog.StreamError, OSError):
            return None   # a run id that names no directory, an unreadable data dir: run without keeping output
        attempt = self._ctx.attempt

        def on_line(stream: str, line: str) -> None:
            log.append(sid, attempt, {"agent": None, "kind": "output", "text": line, "stream": stream})

        return on_line

    def _recorded(self, sid: str, fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        """``fn`` as a step body that records its start, its command's pid and its end."""
        phase, run_id, attempt = self._phase, self._ctx.run_id, self._ctx.attempt
        data_dir, boot_id = self._runtime.data_dir, self._runtime.boot_id

        async def body(*args: Any) -> Any:
            record = steprecords.StepRecorder(data_dir, run_id, sid, phase, attempt, boot_id)
            await record.start()
            token = _current_record.set(record)
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    result = await result
            except asyncio.CancelledError:
                record.end_sync(steprecords.INTERRUPTED, "the app server stopped while this step ran")
                raise
            except StepCancelledError as err:
                await record.end(steprecords.CANCELLED, str(err))
                raise
            except StepInterruptedError as err:
                await record.end(steprecords.INTERRUPTED, str(err))
                raise
            except Exception as err:
                await record.end(steprecords.FAILED, f"{type(err).__name__}: {err}")
                raise
            finally:
                _current_record.reset(token)
            await record.end(steprecords.COMPLETED)
            return result

        return runlog.tagged(run_id, sid, body)   # run_id/step_id on its log lines (observe/runlog.py)

    def _record_cancelled(self, step_id: str) -> None:
        path = cancelled_steps_file(self._runtime.data_dir, self._ctx.run_id)
        entries = read_cancelled_steps(self._runtime.data_dir, self._ctx.run_id)
        entries.append({"name": step_id, "phase": self._phase, "status": "Cancelled",
                        "ended_at": datetime.datetime.now(datetime.UTC).isoformat()})
        write_private_file(path, json.dumps(entries).encode())

    # Plain Python ----------------------------------------------------------
    async def run(self, step_id: str, fn: Callable[..., Awaitable[T]] | Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` once as a memoised step; its return value must be JSON."""
        sid = self._sid(step_id)
        return await self.sdk.run(sid, self._recorded(sid, fn), *args)

    # Several at once -----------------------------------------------------------
    async def parallel(self, *branches: Branch, mode: str | inngest.ParallelMode = "wait",
                       return_exceptions: bool = False) -> tuple[Any, ...]:
        """Run the branches' steps at the same time (the SDK's parallel steps); their results, in order.

        ``await step.parallel(lambda: step.agent("a", ...), lambda: step.agent("b", ...))``
        (see ``parallel.py``).
        """
        if self.group is None:
            raise inngest.NonRetriableError("step.parallel needs the SDK's ctx.group; this step object "
                                            "was built without one")
        return await run_parallel(self.group, branches, mode=mode, return_exceptions=return_exceptions)

    # Shell -------------------------------------------------------------------
    async def cli(self, step_id: str, command: str | Sequence[str], *, cwd: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] | None = None, timeout: str | float | None = None,
                  check: bool = True) -> CliResult:
        """Run a shell command (a string) or a program (a list) in a subprocess group."""
        sid = self._sid(step_id)
        where = self._cwd(cwd)
        seconds = None if timeout is None else parse_duration(timeout, "step.cli timeout").total_seconds()
        shown = command if isinstance(command, str) else " ".join(command)
        phase = self._phase

        async def body() -> dict[str, Any]:
            res = await self._exec(command if isinstance(command, str) else list(command), cwd=where,
                                   env=env, timeout=seconds, step_id=sid, on_line=await self._output_stream(sid))
            if res.timed_out:
                raise CommandTimeoutError(f"`{shown}` timed out after {seconds}s; its process group was stopped")
            if check and res.exit_code != 0:
                raise CommandFailedError(f"`{shown}` exited with code {res.exit_code}: "
                                         f"{_tail(res.stderr or res.stdout)}")
            return CliResult(command=shown, exit_code=res.exit_code, stdout=res.stdout, stderr=res.stderr,
                             stdout_bytes=res.stdout_bytes, stderr_bytes=res.stderr_bytes,
                             duration_s=res.duration_s, cwd=str(where), phase=phase).to_json()

        return CliResult.from_json(await self.sdk.run(sid, self._recorded(sid, body)))

    # Agents ------------------------------------------------------------------
    async def agent(self, step_id: str, *, prompt: str, agent: str = "claude", model: str | None = None,
                    cwd: str | os.PathLike[str] | None = None, timeout: str | float | None = None,
                    resume: str | None = None, env: Mapping[str, str] | None = None,
                    permission_mode: str | None = None, allowed_tools: Sequence[str] | None = None,
                    disallowed_tools: Sequence[str] | None = None, mcp_config: str | os.PathLike[str] | None = None,
                    append_system_prompt: str | None = None, max_turns: int | None = None,
                    extra_args: Sequence[str] | None = None, max_cost_usd: float | None = None) -> AgentResult:
        """Ask an agent CLI once, non-interactively; memoised, so a completed call never reruns.

        The typed options become the CLI's own flags (``agentopts.py``); an
        option the CLI lacks fails the step without retry. ``max_cost_usd``
        and the workflow's ``max_cost_usd`` bound its cost (``costs.py``).
        """
        sid = self._sid(step_id)
        try:
            adapter = get_adapter(agent)
            opts = AgentOptions.build(permission_mode=permission_mode, allowed_tools=allowed_tools,
                                      disallowed_tools=disallowed_tools, mcp_config=mcp_config,
                                      append_system_prompt=append_system_prompt, max_turns=max_turns,
                                      extra_args=extra_args)
            step_max = costs.check_max_cost(max_cost_usd, "step.agent")
        except (AgentcmdError, ValueError) as err:
            raise inngest.NonRetriableError(f"step.agent {step_id!r}: {err}") from err
        if not isinstance(prompt, str) or not prompt.strip():
            raise inngest.NonRetriableError(f"step.agent {step_id!r}: prompt must be a non-empty string")
        where = self._cwd(cwd)
        seconds = None if timeout is None else parse_duration(timeout, "step.agent timeout").total_seconds()
        phase = self._phase

        async def body() -> dict[str, Any]:
            try:
                exe, extra = resolve_executable(agent)
                flags = option_flags(agent, opts, cwd=where)
                adapter.command(exe, prompt, model=model, resume=resume, extra=[*extra, *flags], stream=True)
            except AgentcmdError as err:   # not installed, unsupported option, bad value: retrying cannot help
                raise inngest.NonRetriableError(f"step.agent {step_id!r}: {err}") from err
            data_dir, run_id, attempt = self._runtime.data_dir, self._ctx.run_id, self._ctx.attempt
            budget = await costs.Budget.for_step(data_dir, run_id, self._spec.max_cost_usd, step_max)
            if (message := budget.before_start()) is not None:
                raise costs.BudgetExceededError(message)
            ledger = _AgentLedger(self, sid, agent, model)
            watch = costs.BudgetWatch(budget, ledger.meter)

            def on_usage(usage: dict[str, Any]) -> None:
                reported = live.parser.result.model
                if model is None and reported and ledger.meter.model is None:   # price the model that ran
                    ledger.meter.model = ledger.entry["model"] = reported
                ledger.observe(usage)
                watch.update(usage)

            call = await resumption.resume_interrupted(data_dir, run_id, sid, attempt, agent=agent, resume=resume,
                                                       prompt=prompt, boot_id=self._runtime.boot_id)
            live = agentrun.AgentStream(await agentrun.open_log(data_dir, run_id), data_dir, run_id, sid, attempt,
                                        agent, adapter.new_parser(), on_usage)

            def execute(argv: list[str], *, stdin: bytes | None, on_line: LineCallback | None,
                        stop: asyncio.Event | None) -> Awaitable[ProcessResult]:
                return self._exec(argv, cwd=where, env=env, timeout=seconds, step_id=sid, stdin=stdin,
                                  limit=AGENT_OUTPUT_LIMIT, on_line=on_line, stop=stop)

            try:
                out = await agentrun.run_agent(adapter, exe, call.prompt, model=model, resume=call.resume,
                                               extra=[*extra, *flags], stream=live, execute=execute, stop=watch.stop)
                res, final = out.res, out.final
                cost, source = _check_agent_outcome(agent, seconds, out, ledger, watch)
            except BaseException as err:
                await ledger.record(err)
                if not isinstance(err, asyncio.CancelledError | StepInterruptedError):
                    await live.close()   # an interrupted attempt runs again: its stream has not ended
                raise
            await ledger.record(None)
            await live.close()
            tokens = {k: ledger.usage[k] for k in ("input_tokens", "output_tokens", "cached_tokens", "turns")}
            return AgentResult(agent=agent, text=out.text, exit_code=res.exit_code, json=out.parsed,
                               session_id=out.session_id, model=model or final.model, stderr=_tail(res.stderr),
                               duration_s=ledger.duration_s, phase=phase, cost_usd=cost, cost_source=source,
                               streamed=out.streamed, events=live.appended, tool_calls=final.tool_calls,
                               resumed_session=call.resumed_session, **tokens).to_json()

        return AgentResult.from_json(await self.sdk.run(sid, self._recorded(sid, body)))

    # Git ---------------------------------------------------------------------
    async def git(self, step_id: str, action: str | None = None, *, commit_message: str | None = None,
                  branch: str | None = None, base: str | None = None, remote: str = "origin",
                  path: str | os.PathLike[str] | None = None, title: str | None = None, body: str = "",
                  cwd: str | os.PathLike[str] | None = None, add_all: bool = True) -> GitResult:
        """Git through the git CLI: status, diff, branch, commit, commit-and-branch, push,
        worktree-add, worktree-remove, and pr (GitHub CLI).

        Without ``action`` it is the step id when that names an action,
        else inferred: ``commit_message`` -> commit (with ``branch`` ->
        commit-and-branch), ``branch`` -> branch, ``title`` -> pr.
        """
        act = action or gitops.infer_action(step_id, commit_message, branch, title)
        if act not in gitops.ACTIONS:
            raise inngest.NonRetriableError(f"step.git {step_id!r}: unknown action {act!r}; "
                                            f"use one of {', '.join(gitops.ACTIONS)}")
        if act in ("commit", "commit-and-branch") and not commit_message:
            raise inngest.NonRetriableError(f"step.git {step_id!r}: {act} needs commit_message=")
        if act in ("branch", "commit-and-branch", "worktree-add") and not branch:
            branch = gitops.branch_name_for(self._ctx.run_id)
        if act == "pr" and not title:
            raise inngest.NonRetriableError(f"step.git {step_id!r}: pr needs title=")
        sid = self._sid(step_id)
        where = self._cwd(cwd)
        run_id, phase = self._ctx.run_id, self._phase
        tree = Path(path) if path else self._runtime.data_dir / "worktrees" / run_id

        async def run_git() -> dict[str, Any]:
            if act == "status" or act == "diff":
                res = await gitops.diff(where, base=base, run_id=run_id)
                if act == "status":
                    res = GitResult(action="status", ok=True, output=res.output)
            elif act == "branch":
                res = await gitops.create_branch(where, str(branch), base=base, run_id=run_id)
            elif act == "commit":
                res = await gitops.commit(where, str(commit_message), add_all=add_all, run_id=run_id)
            elif act == "commit-and-branch":
                await gitops.create_branch(where, str(branch), base=base, run_id=run_id)
                res = await gitops.commit(where, str(commit_message), add_all=add_all, run_id=run_id)
                res = GitResult(**{**res.to_json(), "action": act})
            elif act == "push":
                res = await gitops.push(where, remote=remote, branch=branch, run_id=run_id)
            elif act == "worktree-add":
                res = await gitops.worktree_add(where, tree, str(branch), base=base, run_id=run_id)
            elif act == "worktree-remove":
                res = await gitops.worktree_remove(where, tree, run_id=run_id)
            else:
                res = await gitops.pull_request(where, title=str(title), body=body, base=base, run_id=run_id)
            return {**res.to_json(), "phase": phase}

        async def guarded() -> dict[str, Any]:
            try:
                return await run_git()
            except gitops.GitError as err:
                if err.code in ("gh_not_found", "invalid_git_input"):  # retrying cannot help
                    raise inngest.NonRetriableError(str(err)) from err
                raise

        return GitResult.from_json(await self.sdk.run(sid, self._recorded(sid, guarded)))

    # Time and events -------------------------------------------------------
    async def sleep(self, step_id: str, duration: str | float | datetime.timedelta) -> None:
        """Sleep durably: the engine wakes the run; nothing waits in this process."""
        await self.sdk.sleep(self._sid(step_id), parse_duration(duration, "step.sleep duration"))

    async def wait_for_event(self, step_id: str, *, event: str, timeout: str | float | datetime.timedelta,
                             if_exp: str | None = None) -> dict[str, Any] | None:
        """Wait for ``event`` (optionally matching the CEL ``if_exp``); None on timeout."""
        got = await self.sdk.wait_for_event(self._sid(step_id), event=event, if_exp=if_exp,
                                            timeout=parse_duration(timeout, "wait_for_event timeout"))
        if got is None:
            return None
        if isinstance(got, dict):
            return got
        dumped: dict[str, Any] = got.model_dump(mode="json")
        return dumped

    # Humans in the loop (questions.py) -------------------------------------
    async def approval(self, step_id: str, message: str, *,
                       timeout: str | float | datetime.timedelta = "24h") -> Any:
        """Wait durably for a human to approve or reject; an ``Approval`` (``decision="timed_out"`` on timeout)."""
        from agentcmd.workflows import questions

        return await questions.approval(self, step_id, message, timeout=timeout)

    async def ask(self, step_id: str, question: str, *, schema: Any = None,
                  timeout: str | float | datetime.timedelta = "24h", default: Any = _NO_DEFAULT) -> Any:
        """Wait durably for a typed answer checked against ``schema`` (JSON Schema dict or pydantic model);
        ``default`` on timeout, else ``QuestionTimedOut``."""
        from agentcmd.workflows import questions

        if default is _NO_DEFAULT:
            return await questions.ask(self, step_id, question, schema=schema, timeout=timeout)
        return await questions.ask(self, step_id, question, schema=schema, timeout=timeout, default=default)

    # Annotations -----------------------------------------------------------
    async def log(self, message: str) -> None:
        """Record ``message`` in the run's history (a tiny memoised step)."""
        text, phase = str(message), self._phase
        self._ctx.logger.info(text)

        async def record() -> dict[str, str | None]:
            return {"log": text, "phase": phase}

        sid = self._sid("log")
        await self.sdk.run(sid, self._recorded(sid, record))

    async def artifact(self, name: str, path_or_text: str | os.PathLike[str]) -> dict[str, Any]:
        """Keep a file (a ``Path``, or a string naming an existing file) or a text under the run's
        artifacts directory; the history records its name, path and size."""
        if not name or "/" in name or name in (".", ".."):
            raise inngest.NonRetriableError(f"artifact name {name!r} must be a plain file name")
        source: Path | None = None
        if isinstance(path_or_text, os.PathLike):
            source = self._cwd(path_or_text)
            if not source.is_file():
                raise inngest.NonRetriableError(f"artifact {name!r}: no such file {source}")
        elif "\n" not in path_or_text and len(path_or_text) < 4096 and self._cwd(path_or_text).is_file():
            source = self._cwd(path_or_text)
        target = self._runtime.data_dir / "artifacts" / self._ctx.run_id / name
        text, phase = (None if source else str(path_or_text)), self._phase

        async def store() -> dict[str, Any]:
            data = source.read_bytes() if source else (text or "").encode()
            write_private_file(target, data)      # 0600 in 0700 directories, like all run data
            return {"artifact": name, "path": str(target), "bytes": len(data), "phase": phase,
                    "source": str(source) if source else None}

        sid = self._sid(f"artifact:{name}")
        result: dict[str, Any] = await self.sdk.run(sid, self._recorded(sid, store))
        return result


def _check_agent_outcome(agent: str, seconds: float | None, out: agentrun.AgentOutcome, ledger: _AgentLedger,
                         watch: costs.BudgetWatch) -> tuple[float | None, str | None]:
    """Price the attempt's usage, then raise what went wrong (budget, timeout, exit code, error result)."""
    res, final = out.res, out.final
    if out.streamed or final.has_result or final.usage.input_tokens:
        ledger.observe(out.usage)
    else:
        ledger.priced(out.parsed)
    cost, source = ledger.cost
    if (over := watch.error()) is not None:
        raise over
    if res.timed_out:
        raise CommandTimeoutError(f"agent {agent} timed out after {seconds}s; it was stopped")
    if res.exit_code != 0:
        said = f"{final.error}; " if final.is_error and final.error else ""
        raise AgentFailedError(f"agent {agent} exited with code {res.exit_code}: "
                               f"{said}{_tail(res.stderr or ('' if out.streamed else res.stdout))}")
    if final.is_error or (isinstance(out.parsed, dict) and out.parsed.get("is_error") is True):
        raise AgentFailedError(f"agent {agent} reported an error: {_tail(final.error or out.text)}")
    if cost is not None and (message := watch.budget.exceeded(cost)) is not None:
        raise costs.BudgetExceededError(message)
    return cost, source


class _AgentLedger:
    """One agent attempt's usage, recorded in the ledger however the attempt ends (costs.py)."""

    def __init__(self, steps: WorkflowSteps, step_id: str, agent: str, model: str | None) -> None:
        self.entry: dict[str, Any] = {"run_id": steps._ctx.run_id, "workflow": steps._spec.id, "step_id": step_id,
                                      "attempt": steps._ctx.attempt, "agent": agent, "model": model}
        self.data_dir = steps._runtime.data_dir
        self.meter = costs.CostMeter(agent, model)
        self.usage: dict[str, Any] = costs.usage_from_result(None)
        self.cost: tuple[float | None, str | None] = (None, None)
        self.started = time.monotonic()

    @property
    def duration_s(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def observe(self, usage: Mapping[str, Any]) -> None:
        """Running (or final) usage totals from the stream: kept for the ledger and the result."""
        self.usage = {**self.usage, **{k: usage.get(k) or 0 for k in ("input_tokens", "output_tokens",
                                                                       "cached_tokens", "turns")}}
        self.cost = self.meter.cost(usage)

    def priced(self, parsed: Any) -> tuple[float | None, str | None]:
        self.usage = costs.usage_from_result(parsed)
        self.cost = self.meter.cost(self.usage)
        return self.cost

    async def record(self, err: BaseException | None) -> None:
        status = ("completed" if err is None else "budget_exceeded" if isinstance(err, costs.BudgetExceededError)
                  else "cancelled" if isinstance(err, StepCancelledError | asyncio.CancelledError)
                  else "interrupted" if isinstance(err, StepInterruptedError) else "failed")
        entry = {**self.entry, **self.usage, "cost_usd": self.cost[0], "duration_s": self.duration_s,
                 "status": status}
        if isinstance(err, asyncio.CancelledError):   # the loop is stopping: write now, no thread
            costs.record_usage_sync(self.data_dir, entry)
        else:
            await costs.record_usage(self.data_dir, entry)

