"""What to run: the two children's command lines and environments, per engine and mode.

Keys never go on argv (``ps`` shows it). The app server and the embedded
engine get them through an inherited pipe (``agentcmd.handover``), not
their environment, which any step process of the same user could read in
``/proc/<pid>/environ``; the real ``inngest`` binary only reads
``INNGEST_EVENT_KEY``/``INNGEST_SIGNING_KEY``, so ``--engine inngest-cli``
still gets them there. Dev children get no keys: the SDK hex-decodes a
configured key even in dev, and dev needs none.

The app gets ``INNGEST_SERVE_ORIGIN``/``INNGEST_SERVE_PATH`` set to its
configured URL, so the URL it registers with the engine never comes from a
request's ``Host`` header (``agentcmd.server.sdkguard``).

Engines:

- ``embedded``: ``python -m agentcmd engine dev|start`` (this package);
  ``dev`` gets ``--no-discovery`` for the same reason as below, and both get
  ``--passive-sync``: the supervisor syncs the app once it listens (the
  engine would otherwise try first, fail, and log a warning).
  ``AGENTCMD_ENGINE_COMMAND`` replaces ``python -m agentcmd engine`` (an
  advanced/testing setting: the mode arguments are still appended).
- ``inngest-cli``: the real ``inngest`` binary from PATH, else
  ``npx --yes inngest-cli@INNGEST_CLI_VERSION``. ``dev`` gets
  ``--no-discovery`` (we name the app with ``-u``; scanning 30 local ports
  for other apps would only find strangers) and ``start`` gets
  ``--sqlite-dir`` so its ``main.db`` lives under ``AGENTCMD_HOME`` instead
  of ``./.inngest`` in whatever directory the user happened to be in. Both
  get ``--host`` so the engine is not exposed on all interfaces.
- ``external``: nothing is started; the app talks to ``--engine-url``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentcmd.config.paths import ensure_private_dir
from agentcmd.config.settings import Settings
from agentcmd.errors import ConfigError, UnavailableError
from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode
from agentcmd.server import SERVE_PATH
from agentcmd.supervisor.process import ChildSpec
from agentcmd.supervisor.workermode import worker_mode_children

# The npm package's latest release when this was pinned (`npm view inngest-cli version`); a pinned
# version makes `--engine inngest-cli` behave the same on every machine that goes through npx.
INNGEST_CLI_VERSION = "1.45.1"
ENGINE_COMMAND_ENV = "AGENTCMD_ENGINE_COMMAND"
# The file each engine keeps in its --sqlite-dir (ours: agentcmd.engine.store.DB_FILE_NAME, not
# imported to keep the supervisor's startup light; a test checks they agree).
DB_FILE_NAMES = {"embedded": "engine.db", "inngest-cli": "main.db"}
_KEY_VARS = ("INNGEST_EVENT_KEY", "INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK",
             "AGENTCMD_EVENT_KEY", "AGENTCMD_SIGNING_KEY")


@dataclass(frozen=True)
class LaunchPlan:
    """Everything the supervisor starts, decided before anything starts."""

    mode: Mode
    engine_kind: str
    engine: ChildSpec | None  # None: an external engine, not ours to start
    app: ChildSpec
    engine_url: str
    app_url: str
    sdk_url: str
    host: str
    port: int
    engine_port: int
    database_dir: Path | None
    uses_npx: bool = False
    worker: ChildSpec | None = None  # worker mode connect: 'agentcmd worker' serves the workflows (workermode.py)

    @property
    def database_path(self) -> Path | None:
        if self.database_dir is None:
            return None
        return self.database_dir / DB_FILE_NAMES.get(self.engine_kind, "")

    def engine_banner(self) -> str:
        """The spec's log line for the engine, with where its data lives."""
        via = {"inngest-cli": " with the inngest binary", "embedded": ""}.get(self.engine_kind, "")
        if self.engine is None:
            return f"Using the external Inngest server at {self.engine_url} (not started by agentcmd)"
        if self.mode is Mode.PRODUCTION:
            return (f"Starting Inngest Server (persistent mode){via} on {self.engine_url}; "
                    f"database: {self.database_path}")
        return (f"Starting Inngest Dev Server{via} on {self.engine_url} "
                f"(ephemeral: history is lost on restart)")


def connect_host(host: str) -> str:
    """The address to reach a server bound to ``host`` (a wildcard is reached on loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def inngest_cli_command(path: str | None) -> tuple[list[str], bool]:
    """The real ``inngest`` binary's command prefix, and whether it comes through npx."""
    found = shutil.which("inngest", path=path)
    if found:
        return [found], False
    npx = shutil.which("npx", path=path)
    if npx:
        return [npx, "--yes", f"inngest-cli@{INNGEST_CLI_VERSION}"], True
    raise UnavailableError(
        "--engine inngest-cli needs the 'inngest' binary, but neither 'inngest' nor 'npx' is on PATH",
        f"install it ('npm install -g inngest-cli@{INNGEST_CLI_VERSION}', or put the binary from "
        "https://github.com/inngest/inngest/releases on PATH), or use the embedded engine: "
        "'--engine embedded'",
        code="engine_not_found",
    )


def _embedded_command(environ: Mapping[str, str]) -> list[str]:
    override = environ.get(ENGINE_COMMAND_ENV, "").strip()
    if override:
        return shlex.split(override)
    return [sys.executable, "-m", "agentcmd", "engine"]


def child_base_env(base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env["PYTHONUNBUFFERED"] = "1"  # Python children: lines reach the prefixer as they are written
    return env


def production_keys(mode: Mode, event_key: str | None, signing_key: str | None) -> dict[str, str]:
    """What the supervisor hands a production child by pipe (``agentcmd.handover``); nothing in dev."""
    if mode is not Mode.PRODUCTION:
        return {}
    keys = {"INNGEST_EVENT_KEY": event_key, "INNGEST_SIGNING_KEY": signing_key}
    return {name: value for name, value in keys.items() if value}


def engine_env(mode: Mode, base: Mapping[str, str], event_key: str | None,
               signing_key: str | None) -> dict[str, str]:
    """The engine's environment; keys only for the real ``inngest`` binary (pass None for ours)."""
    env = {k: v for k, v in child_base_env(base).items() if k not in _KEY_VARS}
    if mode is Mode.PRODUCTION:
        if event_key:
            env["INNGEST_EVENT_KEY"] = event_key
        if signing_key:
            env["INNGEST_SIGNING_KEY"] = signing_key
    return env


def build_plan(settings: Settings, mode: Mode, environ: Mapping[str, str] | None = None, *,
               allow_remote_dev: bool = False, dashboard_auth: bool = False) -> LaunchPlan:
    """Decide both command lines; raises before anything starts if one cannot be built.

    ``allow_remote_dev`` passes ``--allow-remote-dev`` to the embedded dev
    engine and to the app server, which otherwise refuse a non-loopback
    ``--host`` (no auth in dev). ``dashboard_auth`` passes ``--dashboard-auth``
    to both (the embedded engine's dashboard and the app's workflow views
    then ask for the dashboard token even on loopback).
    """
    env_in = dict(os.environ if environ is None else environ)
    host, port, engine_port = settings.host, settings.port, settings.engine_port
    reach = connect_host(host)
    app_url = f"http://{reach}:{port}"
    sdk_url = app_url + SERVE_PATH
    event_key, signing_key = settings.secret("event_key"), settings.secret("signing_key")
    production = mode is Mode.PRODUCTION

    engine: ChildSpec | None = None
    database_dir: Path | None = None
    uses_npx = False
    if settings.engine == "external":
        if not settings.engine_url:
            raise ConfigError("--engine external needs the engine's address",
                              "pass --engine-url http://HOST:PORT (or set AGENTCMD_ENGINE_URL)")
        engine_url = settings.engine_url.rstrip("/")
    else:
        if port == engine_port:
            raise ConfigError(f"the app server and the engine cannot share port {port}",
                              "give them different ports with --port and --engine-port")
        engine_url = f"http://{reach}:{engine_port}"
        if settings.engine == "embedded":
            prefix = _embedded_command(env_in)
            if production:
                database_dir = settings.resolved_sqlite_dir
                args = ["start", "--host", host, "--port", str(engine_port),
                        "--sqlite-dir", str(database_dir), "--sdk-url", sdk_url, "--passive-sync"]
                if dashboard_auth:
                    args.append("--dashboard-auth")
            else:
                args = ["dev", "--host", host, "--port", str(engine_port), "-u", sdk_url, "--no-discovery",
                        "--passive-sync"]
                if dashboard_auth:
                    args.append("--dashboard-auth")
                if allow_remote_dev:
                    args.append("--allow-remote-dev")
        else:
            prefix, uses_npx = inngest_cli_command(env_in.get("PATH"))
            if production:
                database_dir = settings.resolved_data_dir / "inngest-cli"
                args = ["start", "--port", str(engine_port), "--sdk-url", sdk_url,
                        "--host", host, "--sqlite-dir", str(database_dir)]
            else:
                args = ["dev", "-u", sdk_url, "--port", str(engine_port), "--host", host, "--no-discovery"]
        if database_dir is not None:
            ensure_private_dir(database_dir)
        if settings.engine == "embedded":  # our engine reads the keys from the handover pipe
            engine = ChildSpec("engine", [*prefix, *args], engine_env(mode, env_in, None, None),
                               health_url=engine_url + "/health",
                               secrets=production_keys(mode, event_key, signing_key))
        else:
            engine = ChildSpec("engine", [*prefix, *args], engine_env(mode, env_in, event_key, signing_key),
                               health_url=engine_url + "/health")

    ensure_private_dir(settings.resolved_data_dir)   # run data: artifacts, worktrees, records
    app_env = child_base_env(inngest_env(mode, engine_url, base=env_in, serve_url=sdk_url))
    for var in _KEY_VARS:
        app_env.pop(var, None)
    app_argv = [sys.executable, "-m", "agentcmd.server", "--host", host, "--port", str(port),
                "--project", str(settings.resolved_project_dir)]
    if dashboard_auth:
        app_argv.append("--dashboard-auth")
    if allow_remote_dev and not production:
        app_argv.append("--allow-remote-dev")
    app = ChildSpec("app", app_argv, app_env, health_url=app_url + "/health",
                    secrets=production_keys(mode, event_key, signing_key))
    engine, app, worker = worker_mode_children(settings, mode, engine, app, engine_url, sdk_url)
    return LaunchPlan(mode=mode, engine_kind=settings.engine, engine=engine, app=app,
                      engine_url=engine_url, app_url=app_url, sdk_url=sdk_url, host=host, port=port,
                      engine_port=engine_port, database_dir=database_dir, uses_npx=uses_npx, worker=worker)
