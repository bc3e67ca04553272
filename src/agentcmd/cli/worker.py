"""``agentcmd worker``: run the project's workflows as a connect worker against an engine, anywhere.

Only Typer is imported here; the SDK and the workflows load inside the
command (``server/connectworker.py`` does the work). The mode follows the
SDK's own rule first, since the SDK is what talks to the engine: a
``--production``/``--dev`` flag, else ``INNGEST_DEV`` (set: dev), else
``NODE_ENV``/``INNGEST_DEV_MODE``, else production (a worker on another
machine is for a production engine; a dev engine is normally on this one).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from agentcmd.mode import Mode

_HELP = (
    "Run the project's workflows as a connect worker: it dials the engine (POST /v0/connect/start, then a "
    "WebSocket to the engine's gateway, by default the engine's port + 1) and runs the steps the engine sends "
    "it. No inbound port is needed, so it runs on any machine that can reach the engine; start several and "
    "the engine spreads the runs over them.\n\n"
    "Keys and mode as for the app server: INNGEST_SIGNING_KEY (and INNGEST_EVENT_KEY) or the config file in "
    "production; mode from --production/--dev, else INNGEST_DEV, else NODE_ENV, else production. "
    "SIGTERM or Ctrl-C drains: no new work, the steps in flight finish, exit 0 (a second one stops at once). "
    "SIGHUP reloads the workflow files. Works against agentcmd's engine, 'inngest dev|start' and Inngest Cloud "
    "(docs/running.md, Workers)."
)


def register(app: typer.Typer) -> None:
    app.command("worker", help=_HELP)(worker)


def worker(
    engine_url: str | None = typer.Option(
        None, "--engine-url", metavar="URL",
        help="The engine's API URL (its port, not the gateway's). Default: INNGEST_BASE_URL, INNGEST_API_BASE_URL, "
             "the engine_url setting (AGENTCMD_ENGINE_URL), else http://127.0.0.1:<engine port>."),
    event_url: str | None = typer.Option(
        None, "--event-url", metavar="URL",
        help="Where the SDK sends events, if not the engine URL (Inngest Cloud: https://inn.gs)."),
    instance_id: str | None = typer.Option(
        None, "--instance-id", metavar="ID",
        help="This worker's stable name on the engine's apps page (default: the host name)."),
    max_concurrency: int | None = typer.Option(
        None, "--max-concurrency", min=1, metavar="N",
        help="Steps this worker runs at once; the engine sends no more (default: no limit, or "
             "INNGEST_CONNECT_MAX_WORKER_CONCURRENCY)."),
    project: Path | None = typer.Option(
        None, "--project", help="Project holding .agentcmd/workflows (default: the project_dir setting, else "
                                "the current directory)."),
    gateway_url: str | None = typer.Option(
        None, "--gateway-url", metavar="WS_URL",
        help="Dial this gateway address instead of the one the engine hands out (a proxy or a NAT in between): "
             "ws://HOST:PORT/v0/connect."),
    production: bool = typer.Option(False, "--production", help="Production mode (a signing key is needed)."),
    dev: bool = typer.Option(False, "--dev", help="Dev mode: no keys, for a dev engine."),
    stop_steps: bool = typer.Option(False, "--stop-steps", hidden=True,
                                    help="A stop interrupts the running steps (agentcmd dev|start's own worker)."),
    wait_for_workflows: bool = typer.Option(False, "--wait-for-workflows", hidden=True,
                                            help="No workflows yet: wait for SIGHUP (agentcmd dev|start)."),
) -> None:
    from agentcmd.errors import ConfigError
    from agentcmd.mode import Mode
    from agentcmd.observe import runlog
    from agentcmd.server.connectworker import WorkerOptions, run_worker

    if production and dev:
        raise ConfigError("--production and --dev contradict each other", "give at most one of them")
    if gateway_url is not None and not gateway_url.startswith(("ws://", "wss://")):
        raise ConfigError(f"--gateway-url {gateway_url!r} is not a ws:// or wss:// URL",
                          "pass e.g. --gateway-url ws://engine-host:8289/v0/connect")
    mode, reason = worker_mode(Mode.PRODUCTION if production else Mode.DEV if dev else None)
    import logging

    from agentcmd.config import load_settings

    runlog.configure_logging(getattr(logging, load_settings().log_level.upper()))   # AGENTCMD_LOG_LEVEL
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # inngest 0.5's pydantic class-based config, at import
        import inngest.connect  # noqa: F401

    logging.getLogger("agentcmd.worker").info("mode: %s (from %s)", mode.value, reason)
    code = run_worker(WorkerOptions(mode=mode, engine_url=engine_url, event_url=event_url, instance_id=instance_id,
                                    max_concurrency=max_concurrency, project_dir=project, gateway_url=gateway_url,
                                    stop_steps=stop_steps, wait_for_workflows=wait_for_workflows))
    if code:
        raise typer.Exit(code)


def worker_mode(flag: Mode | None) -> tuple[Mode, str]:
    """(mode, why): the flag, else INNGEST_DEV (the SDK's variable), else NODE_ENV/INNGEST_DEV_MODE, else
    production."""
    from agentcmd.cli.run import resolve
    from agentcmd.config import load_settings
    from agentcmd.mode import Mode

    if flag is not None:
        return flag, "--production" if flag is Mode.PRODUCTION else "--dev"
    raw = os.environ.get("INNGEST_DEV", "").strip()
    if raw:
        dev = raw.lower() not in ("0", "false")
        return (Mode.DEV if dev else Mode.PRODUCTION), f"INNGEST_DEV={raw}"
    resolution = resolve("start", None, load_settings())
    return resolution.mode, resolution.reason.replace("'agentcmd start'", "'agentcmd worker'")
