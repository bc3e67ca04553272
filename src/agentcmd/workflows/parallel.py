"""``step.parallel``: several steps of one run at once, on the SDK's parallel steps.

The official SDK runs steps in parallel with ``ctx.group.parallel(callables)``:
while the callables are awaited one after the other, every step they reach
that has no memo yet is *planned* instead of run, and the SDK answers the
engine with all of them at once. The engine then calls the app once per
planned step, each call targeting one step, and those calls run at the same
time (each in its own request, so each command is its own process group,
its own step record, its own stream and cost). When they have all ended
(``mode="wait"``, the default) the engine calls the body again, the steps
now come back from their memos, and ``step.parallel`` returns their results
in the order of the branches.

Why branches are callables (or not-yet-awaited step calls): a step must be
*reached inside* the group for the SDK to plan it. An ``asyncio`` task
started earlier runs outside the group and would run the step at once, so
anything but a coroutine or a callable is refused with a clear error.

``mode="race"`` is the SDK's ``ParallelMode.RACE``: the engine re-runs the
body as soon as any branch's step ends, so a branch of several steps goes on
without waiting for the slowest step of the others (at the price of more
calls). Cancelling the run stops every branch: all of a run's processes are
registered under its run id (``process.terminate_run``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import inngest

MODES: dict[str, inngest.ParallelMode] = {"wait": inngest.ParallelMode.WAIT, "race": inngest.ParallelMode.RACE}

Branch = Callable[[], Awaitable[Any]] | Coroutine[Any, Any, Any]
"""``lambda: step.agent(...)``, an ``async def`` taking no arguments, or ``step.cli(...)`` not yet awaited."""


class SdkGroup(Protocol):
    """What ``ctx.group`` of the SDK offers (``inngest._internal.step_lib.Group``)."""

    async def parallel(self, callables: tuple[Callable[[], Awaitable[Any]], ...],
                       parallel_mode: inngest.ParallelMode = ...) -> tuple[Any, ...]: ...


def parallel_mode(mode: str | inngest.ParallelMode) -> inngest.ParallelMode:
    """``"wait"``/``"race"`` (or the SDK's enum) as the SDK's ``ParallelMode``; anything else is refused."""
    if isinstance(mode, inngest.ParallelMode):
        return mode
    if isinstance(mode, str) and mode in MODES:
        return MODES[mode]
    raise inngest.NonRetriableError(f"step.parallel: mode must be 'wait' or 'race', got {mode!r}")


def _describe(branch: object) -> str:
    text = repr(branch)
    return text if len(text) <= 80 else text[:77] + "..."


class _Branches:
    """The branches as the callables the SDK wants; coroutines never started are closed at the end."""

    def __init__(self, branches: tuple[Any, ...], return_exceptions: bool) -> None:
        for index, branch in enumerate(branches, 1):
            if not (inspect.iscoroutine(branch) or callable(branch)):
                self.close(branches)
                raise inngest.NonRetriableError(
                    f"step.parallel: branch {index} is {_describe(branch)}, not a step call; pass "
                    "lambda: step.cli(...), an async function taking no arguments, or step.cli(...) "
                    "without await")
        self.branches = branches
        self.return_exceptions = return_exceptions
        self.started: set[int] = set()

    def callables(self) -> tuple[Callable[[], Awaitable[Any]], ...]:
        return tuple(self._callable(index, branch) for index, branch in enumerate(self.branches))

    def _callable(self, index: int, branch: Any) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            self.started.add(index)
            try:
                result = branch if inspect.iscoroutine(branch) else branch()
                if not inspect.isawaitable(result):
                    raise inngest.NonRetriableError(
                        f"step.parallel: branch {index + 1} returned {_describe(result)} instead of a step "
                        "call to await; write lambda: step.cli(...) (no await inside the lambda)")
                return await result
            except Exception as err:  # the SDK's own control flow is BaseException: it passes through
                if self.return_exceptions and not isinstance(err, inngest.NonRetriableError):
                    return err
                raise

        return run

    def close(self, branches: tuple[Any, ...] | None = None) -> None:
        """Close coroutine branches that never ran (a branch before them failed): no 'never awaited'."""
        for index, branch in enumerate(self.branches if branches is None else branches):
            if inspect.iscoroutine(branch) and (branches is not None or index not in self.started):
                branch.close()


async def run_parallel(group: SdkGroup, branches: tuple[Any, ...], *, mode: str | inngest.ParallelMode = "wait",
                       return_exceptions: bool = False) -> tuple[Any, ...]:
    """Run ``branches`` as the SDK's parallel steps; their results, in order (see the module docstring).

    With ``return_exceptions=True`` a branch whose step failed (its retries
    used up) gives its ``inngest.StepError`` as its result instead of
    raising, like ``asyncio.gather``: the other branches' results stay usable.
    """
    sdk_mode = parallel_mode(mode)
    wrapped = _Branches(branches, return_exceptions)
    try:
        return tuple(await group.parallel(wrapped.callables(), parallel_mode=sdk_mode))
    finally:
        wrapped.close()
