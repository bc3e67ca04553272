"""``--worker-mode connect``: ``agentcmd dev|start`` serve the workflows from an ``agentcmd worker`` child.

In the default mode (``http``) the engine calls the app server's SDK
endpoint, one HTTP request per step. In ``connect`` mode a third child,
``agentcmd worker`` (``server/connectworker.py``), dials the engine's
connect gateway and runs the steps; the app server still serves the UI and
the API (listing and starting workflows) but is never synced with the
engine: the engine is started without ``-u``, the supervisor does not
``PUT`` the app, and the app server's own syncs (a reload, a run started
for a workflow the engine does not know) are off
(``AGENTCMD_WORKER_MODE=connect`` in its environment). Syncing both would
serve one app id from two places, and the engine would take whichever came
last. The worker's connection is its sync: the supervisor is "ready" once
the worker logged ``READY_LINE`` (or, with no workflows yet, ``WAITING_LINE``:
from then on it takes a reload's SIGHUP).

In ``http`` mode the embedded engine gets ``--no-connect``: nothing of
agentcmd dials its gateway then, a connect worker of app ``agentcmd`` would
take the app over from the HTTP app server, and its port (the engine's
port + 1) need not be free or open.

Both children get one ``AGENTCMD_BOOT_ID``: a step the worker runs is
"running" to the app server's views, not "interrupted by an earlier app
process" (``workflows/steprecords.py``).

The worker is stopped like the app (SIGTERM after the engine): with
``--stop-steps`` it stops its steps' commands at once (the engine, stopped
first, has recorded their calls as interrupted) rather than draining for
as long as a step takes. A reload (dev's file watch, production's SIGHUP)
reloads the app server, then sends the worker SIGHUP: it connects with the
new workflows, then drains its old connection.
"""

from __future__ import annotations

import dataclasses
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from agentcmd.config.settings import Settings
from agentcmd.errors import ConfigError
from agentcmd.mode import Mode
from agentcmd.server.connectmode import READY_LINE, WAITING_LINE
from agentcmd.supervisor.process import ChildSpec

WORKER_MODE_ENV = "AGENTCMD_WORKER_MODE"
BOOT_ID_ENV = "AGENTCMD_BOOT_ID"   # agentcmd.workflows.context.BOOT_ID_ENV (not imported: it pulls in the SDK)
_SDK_URL_FLAGS = ("-u", "--sdk-url")


def worker_mode_env(worker_mode: str) -> dict[str, str]:
    """What the app server (and the worker, which starts from its environment) are told."""
    env = {WORKER_MODE_ENV: worker_mode}
    if worker_mode == "connect":
        env[BOOT_ID_ENV] = uuid.uuid4().hex
    return env


def without_sdk_url(engine: ChildSpec, sdk_url: str) -> ChildSpec:
    """The engine's command line without the app's serve URL (and ``--passive-sync``, which only concerns it)."""
    argv = list(engine.argv)
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _SDK_URL_FLAGS and i + 1 < len(argv) and argv[i + 1] == sdk_url:
            i += 2
            continue
        if argv[i] != "--passive-sync":
            out.append(argv[i])
        i += 1
    return dataclasses.replace(engine, argv=out)


def worker_mode_children(settings: Settings, mode: Mode, engine: ChildSpec | None, app: ChildSpec, engine_url: str,
                         sdk_url: str) -> tuple[ChildSpec | None, ChildSpec, ChildSpec | None]:
    """(engine, app, worker) for the ``worker_mode`` setting; the worker is None in http mode."""
    app = dataclasses.replace(app, env={**app.env, **worker_mode_env(settings.worker_mode)})
    if settings.worker_mode != "connect":
        if engine is not None and settings.engine == "embedded":   # http mode: no gateway (see the docstring)
            engine = dataclasses.replace(engine, argv=[*engine.argv, "--no-connect"])
        return engine, app, None
    if engine is not None:
        engine = without_sdk_url(engine, sdk_url)
    return engine, app, worker_spec(mode, engine_url, settings.resolved_project_dir, app.env, app.secrets)


def worker_spec(mode: Mode, engine_url: str, project_dir: Path, app_env: Mapping[str, str],
                secrets: Mapping[str, str]) -> ChildSpec:
    """``agentcmd worker`` against the supervisor's engine, with the app server's environment and keys."""
    env = {k: v for k, v in app_env.items() if k not in ("INNGEST_SERVE_ORIGIN", "INNGEST_SERVE_PATH")}
    argv = [sys.executable, "-m", "agentcmd", "worker", "--engine-url", engine_url, "--project", str(project_dir),
            "--production" if mode is Mode.PRODUCTION else "--dev", "--stop-steps", "--wait-for-workflows"]
    return ChildSpec("worker", argv, env, secrets=secrets, ready_lines=(READY_LINE, WAITING_LINE))


def check_gateway(settings: Settings, *, starts_embedded_engine: bool, host: str, engine_port: int) -> None:
    """Connect mode with the embedded engine: its gateway must be on and its port free, or the worker could
    never connect; refused before anything starts (the engine alone would only log a warning)."""
    if settings.worker_mode != "connect" or not starts_embedded_engine:
        return
    if not settings.engine_connect:
        raise ConfigError("--worker-mode connect needs the engine's connect gateway, and engine_connect is off",
                          "unset AGENTCMD_ENGINE_CONNECT (or set it to true), or use --worker-mode http")
    port = settings.engine_connect_port if settings.engine_connect_port is not None else engine_port + 1
    from agentcmd.errors import PortInUseError
    from agentcmd.supervisor.ports import port_is_free

    if port and not port_is_free(host, port):
        raise PortInUseError(f"port {port} on {host} (the engine's connect gateway, which --worker-mode connect "
                             f"needs) is already in use",
                             "stop what uses it, or give the gateway another port with "
                             "AGENTCMD_ENGINE_CONNECT_PORT=N (by default it is the engine's port + 1)",
                             details={"port": port, "role": "connect gateway"})
