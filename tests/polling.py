"""One way to wait in tests: poll a condition with a deadline, never a bare sleep.

``wait_for(predicate, timeout, what)`` returns the first truthy value of
``predicate()``; an ``httpx.HTTPError`` counts as "not yet" (a server still
starting). At the deadline it fails naming ``what`` and what was seen:
``seen()`` if given (a log tail, say), else the last value. ``children``
(anything with ``proc`` and ``output()``, e.g. ``tests.harness.processes.Child``)
fail it at once with that child's output if one of them exits meanwhile.

``until(predicate, timeout)`` is the same inside a coroutine, for a condition
that work on the running event loop makes true (it yields to the loop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx


def wait_for(predicate: Callable[[], Any], timeout: float = 15, what: str = "the condition",
             seen: Callable[[], str] | None = None, children: Iterable[Any] = (), interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    value: Any = None
    while True:
        try:
            value = predicate()
        except httpx.HTTPError as exc:
            value = None
            last_error: Any = exc
        else:
            last_error = None
        if value:
            return value
        for child in children:
            if child.proc.poll() is not None:
                raise AssertionError(f"{' '.join(map(str, child.proc.args[1:4]))} exited with {child.proc.returncode} "
                                     f"while waiting for {what}:\n{child.output()[-3000:]}")
        if time.monotonic() >= deadline:
            detail = seen()[-3000:] if seen is not None else repr(last_error or value)
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; seen: {detail}")
        time.sleep(interval)


async def until(predicate: Callable[[], Any], timeout: float = 10, what: str = "the condition") -> Any:
    """Poll ``predicate`` on the running loop (the work it waits for runs there too) until it is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := predicate()):
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)
    return value
