"""``agentcmd dev`` and ``agentcmd start``: engine + app server under one supervisor.

Both commands take the same options; they differ only in their default
mode (``dev``: dev, ``start``: production). Only Typer is imported here:
settings, the supervisor and everything else load inside the command, so
``agentcmd --help`` stays fast. The order inside ``_run`` is the contract
"nothing started half-way": settings (a bad signing key fails here), mode,
keys, the launch plan (a missing ``inngest`` binary fails here), preflight
(busy ports, unreachable external engine), and only then the children.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from agentcmd.config.settings import Settings
    from agentcmd.mode import ModeResolution
    from agentcmd.supervisor.logs import LogSink

DEFAULT_STARTUP_TIMEOUT = 30.0
NPX_STARTUP_TIMEOUT = 180.0  # the first npx run downloads the inngest binary


class EngineChoice(enum.StrEnum):
    EMBEDDED = "embedded"
    INNGEST_CLI = "inngest-cli"
    EXTERNAL = "external"


class WorkerModeChoice(enum.StrEnum):
    HTTP = "http"
    CONNECT = "connect"


class LogFormatChoice(enum.StrEnum):
    AUTO = "auto"
    PLAIN = "plain"
    RICH = "rich"
    JSON = "json"


_HELP = {
    "dev": "Run the engine and the app server in dev mode (ephemeral: history is lost on restart).\n\n"
           "Mode: --production/--dev, else NODE_ENV (production/development), else dev.",
    "start": "Run the engine and the app server in production mode (SQLite, keys, history kept).\n\n"
             "Mode: --production/--dev, else NODE_ENV (production/development), else production. "
             "A first production run without keys generates them, as 'agentcmd install' does.",
}


def _make_command(command: str) -> Callable[..., None]:
    def run(
        port: int | None = typer.Option(None, "--port", help="App server port (default 4100)."),
        engine_port: int | None = typer.Option(None, "--engine-port", help="Engine port (default 8288)."),
        host: str | None = typer.Option(None, "--host", help="Interface both servers bind (default 127.0.0.1)."),
        production: bool = typer.Option(False, "--production", help="Production mode, whatever NODE_ENV says."),
        dev: bool = typer.Option(False, "--dev", help="Dev mode, whatever NODE_ENV says."),
        engine: EngineChoice | None = typer.Option(
            None, "--engine", case_sensitive=False,
            help="embedded (default), inngest-cli (the real 'inngest' binary) or external (--engine-url)."),
        engine_url: str | None = typer.Option(None, "--engine-url",
                                              help="URL of an engine started elsewhere (--engine external)."),
        worker_mode: WorkerModeChoice | None = typer.Option(
            None, "--worker-mode", case_sensitive=False,
            help="http (default): the engine calls the app server for each step. connect: an 'agentcmd worker' "
                 "child dials the engine's connect gateway and runs the steps; the app server keeps the UI and "
                 "API. Or AGENTCMD_WORKER_MODE (docs/running.md, Workers)."),
        log_format: LogFormatChoice | None = typer.Option(
            None, "--log-format", case_sensitive=False,
            help="auto (colours on a terminal), plain, rich or json (default auto)."),
        project: Path | None = typer.Option(None, "--project",
                                            help="Project holding .agentcmd/workflows (default current dir)."),
        startup_timeout: float | None = typer.Option(
            None, "--startup-timeout", min=0.1,
            help=f"Seconds to wait for both /health (default {DEFAULT_STARTUP_TIMEOUT:g}; "
                 f"{NPX_STARTUP_TIMEOUT:g} through npx)."),
        stop_grace: float = typer.Option(5.0, "--stop-grace", min=0.0,
                                         help="Seconds between SIGTERM and SIGKILL when stopping a child."),
        allow_remote_dev: bool = typer.Option(
            False, "--allow-remote-dev",
            help="Dev mode on a non-loopback --host (no auth: trusted networks only)."),
        dashboard_auth: bool = typer.Option(
            False, "--dashboard-auth",
            help="Ask for the dashboard token on the engine dashboard and the workflow views even on loopback "
                 "(the app API then needs the signing key as bearer)."),
        allowed_host: list[str] = typer.Option(
            None, "--allowed-host", metavar="NAME",
            help="Also answer requests addressed to this host name, on both servers (repeatable; loopback names "
                 "and the bind host always are). Or AGENTCMD_ALLOWED_HOSTS, comma separated."),
    ) -> None:
        if allowed_host:
            _export_allowed_hosts(allowed_host)
        _run(command, dict(port=port, engine_port=engine_port, host=host,
                           engine=engine.value if engine else None, engine_url=engine_url,
                           worker_mode=worker_mode.value if worker_mode else None,
                           log_format=log_format.value if log_format else None, project_dir=project),
             production=production, dev=dev, startup_timeout=startup_timeout, stop_grace=stop_grace,
             allow_remote_dev=allow_remote_dev, dashboard_auth=dashboard_auth)

    run.__doc__ = _HELP[command]
    return run


def _export_log_format(fmt: str) -> None:
    """Both children log in the supervisor's format: JSON lines (with run ids) when it writes JSON."""
    import os

    from agentcmd.observe.runlog import LOG_FORMAT_ENV

    os.environ[LOG_FORMAT_ENV] = fmt


def _export_allowed_hosts(names: list[str]) -> None:
    """``--allowed-host`` reaches both servers through their environment (they read AGENTCMD_ALLOWED_HOSTS)."""
    import os

    from agentcmd.httpedge.hosts import ALLOWED_HOSTS_ENV, parse_allowed

    parse_allowed(names)  # a bad name exits 2 here
    os.environ[ALLOWED_HOSTS_ENV] = ",".join(filter(None, [os.environ.get(ALLOWED_HOSTS_ENV, ""), *names]))


def register(app: typer.Typer) -> None:
    app.command("dev")(_make_command("dev"))
    app.command("start")(_make_command("start"))


def _run(command: str, overrides: dict[str, Any], *, production: bool, dev: bool,
         startup_timeout: float | None, stop_grace: float, allow_remote_dev: bool,
         dashboard_auth: bool = False) -> None:
    from agentcmd.config import load_settings
    from agentcmd.errors import ConfigError
    from agentcmd.mode import Mode
    from agentcmd.supervisor.launch import build_plan
    from agentcmd.supervisor.logs import LogSink
    from agentcmd.supervisor.supervisor import Supervisor, preflight

    if production and dev:
        raise ConfigError("--production and --dev contradict each other", "give at most one of them")
    settings = load_settings(**overrides)  # refuses a non-hex signing key before anything starts
    sink = LogSink(settings.log_format)
    _export_log_format(settings.log_format)
    flag = Mode.PRODUCTION if production else Mode.DEV if dev else None
    resolution = resolve(command, flag, settings)
    sink.info(f"mode: {resolution.describe()}", mode=resolution.mode.value, reason=resolution.reason)
    if resolution.warning:
        sink.warning(resolution.warning)
    if resolution.mode is Mode.PRODUCTION:
        settings = _ensure_production_keys(settings, overrides, sink)
    plan = build_plan(settings, resolution.mode, allow_remote_dev=allow_remote_dev, dashboard_auth=dashboard_auth)
    _check_app_access(plan, settings, allow_remote_dev, dashboard_auth, sink)
    preflight(plan)
    from agentcmd.supervisor.workermode import check_gateway

    check_gateway(settings, starts_embedded_engine=plan.engine is not None and plan.engine_kind == "embedded",
                  host=plan.host, engine_port=plan.engine_port)   # --worker-mode connect (supervisor/workermode.py)
    timeout = startup_timeout or (NPX_STARTUP_TIMEOUT if plan.uses_npx else DEFAULT_STARTUP_TIMEOUT)
    code = Supervisor(plan, sink, startup_timeout=timeout, stop_grace=stop_grace).run()
    if code:
        raise typer.Exit(code)


def _check_app_access(plan: Any, settings: Settings, allow_remote_dev: bool, dashboard_auth: bool,
                      sink: LogSink) -> None:
    """The app server's bind rules (agentcmd.server.access), checked before anything starts.

    The app server checks them itself too; here a refusal comes before the engine has started.
    """
    from agentcmd.server.access import check_bind, check_secrets

    warning = check_bind(plan.mode, plan.host, allow_remote_dev)
    check_secrets(plan.mode, plan.host, dashboard_auth=dashboard_auth, token=settings.secret("dashboard_token"),
                  signing_key=settings.secret("signing_key"))
    if warning:
        sink.warning(warning)


def resolve(command: str, flag: Any, settings: Settings) -> ModeResolution:
    """Flag > NODE_ENV > the ``dev_mode`` setting (INNGEST_DEV_MODE) > the command's default."""
    import os

    from agentcmd.mode import Mode, ModeResolution, resolve_mode

    resolution = resolve_mode(flag, os.environ.get("NODE_ENV"), command)
    if flag is None and settings.dev_mode is not None and resolution.reason.startswith("the default"):
        mode = Mode.DEV if settings.dev_mode else Mode.PRODUCTION
        return ModeResolution(mode, f"INNGEST_DEV_MODE={str(settings.dev_mode).lower()}", resolution.warning)
    return resolution


def _ensure_production_keys(settings: Settings, overrides: dict[str, Any], sink: LogSink) -> Settings:
    """Production needs both keys; a first run generates them exactly as 'agentcmd install' does."""
    from agentcmd.config import load_settings
    from agentcmd.config.install import ensure_keys
    from agentcmd.errors import ConfigError

    if settings.secret("event_key") and settings.secret("signing_key"):
        return settings
    if settings.engine == "external":
        raise ConfigError("production with an external engine needs that engine's event key and signing key",
                          "set INNGEST_EVENT_KEY and INNGEST_SIGNING_KEY to the keys the engine was "
                          "started with (or use --dev)")
    result = ensure_keys()
    sink.info(f"no keys yet: generated an event key and a signing key in {result.path} (mode 0600); "
              f"they are not printed, see 'agentcmd config'", config_file=str(result.path))
    return load_settings(**overrides)
