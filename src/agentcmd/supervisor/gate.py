"""Start a Python program now, let it run later: ``python -m agentcmd.supervisor.gate [-m] MODULE ARGS...``.

Why: the embedded engine must be up before the app server listens (see
``Supervisor._wait_engine_up``), but most of the app server's startup is
importing its web stack (FastAPI, uvicorn, the inngest SDK), which does not
depend on the engine at all. So the supervisor starts the app server through
this gate at once: it imports those modules while the engine starts, then
blocks on a line from stdin. When the engine answers ``/health`` the
supervisor writes that line and the gate runs ``MODULE`` exactly as
``python -m MODULE ARGS...`` would. End of input without the line (the
supervisor is gone) exits quietly with status 1.
"""

from __future__ import annotations

import contextlib
import importlib
import runpy
import sys

# Imported before the gate opens: the app server's module and what it and uvicorn import lazily
# once running (measured with `python -X importtime -m agentcmd.server`). A missing one is skipped.
WARM_MODULES = (
    "agentcmd.server.app", "agentcmd.config.settings", "agentcmd.ui.views", "agentcmd.engine.dashboard.views",
    "fastapi", "inngest.fast_api", "httpx", "jinja2",
    "uvicorn", "uvicorn.lifespan.on", "uvicorn.loops.uvloop", "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl", "uvloop", "h11",
)


def main(argv: list[str]) -> None:
    if argv[:1] == ["-m"]:  # `gate -m MODULE ...` reads like the command it stands for
        argv = argv[1:]
    if not argv:
        sys.stderr.write("usage: python -m agentcmd.supervisor.gate MODULE [ARGS...]\n")
        sys.exit(2)
    for name in WARM_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    if not sys.stdin.readline():
        sys.exit(1)
    sys.stdin.close()
    sys.argv = [argv[0], *argv[1:]]
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
