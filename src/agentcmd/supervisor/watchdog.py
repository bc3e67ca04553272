"""Parent watch: stop the children if the supervisor dies without stopping them.

Run as a script (``python -I -S watchdog.py``), not imported: it must start
in milliseconds and outlive the supervisor. The supervisor keeps the write
end of this process's stdin and writes ``+PGID`` when it starts a child and
``-PGID`` once it has stopped and reaped it. When the supervisor dies for
any reason, even SIGKILL, the kernel closes that pipe; on EOF the watchdog
sends SIGTERM to every group still registered, waits a grace period, then
SIGKILLs what is left. On Linux the children's parent-death signal usually
got there first; this covers other systems, children that ignore SIGTERM,
and grandchildren (``npx`` -> ``node`` -> ``inngest``) the signal misses.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"  # a zombie is dead
    except (OSError, IndexError):
        return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def main(grace: float) -> int:
    # Ctrl-C in the terminal is the supervisor's business, not ours.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin:
        token = line.strip()
        if token.startswith("+") and token[1:].isdigit():
            groups.add(int(token[1:]))
        elif token.startswith("-") and token[1:].isdigit():
            groups.discard(int(token[1:]))
    if not groups:
        return 0  # the supervisor stopped everything itself
    sys.stderr.write(f"agentcmd watchdog: the supervisor is gone; stopping process groups "
                     f"{sorted(groups)}\n")
    for pgid in groups:
        _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(p) for p in groups) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0))
