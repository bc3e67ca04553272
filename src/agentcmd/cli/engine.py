"""``agentcmd engine dev|start``: the embedded Inngest-compatible engine.

Only Typer is imported at module level; the engine (Starlette, uvicorn,
aiohttp, SQLite) is imported inside the commands so ``agentcmd --help``
stays fast.
"""

from __future__ import annotations

import enum

import typer

app = typer.Typer(help="Run the embedded engine alone (like 'inngest dev' / 'inngest start').",
                  no_args_is_help=True)

_HOST = typer.Option("127.0.0.1", "--host", help="Interface to bind.")
_PORT = typer.Option(8288, "--port", "-p", min=1, max=65535, help="Port for the event API, sync, REST and GraphQL.")
_SDK_URL = typer.Option(None, "--sdk-url", "-u", help="App serve URL to sync (repeatable).")
_RETRY = typer.Option(None, "--retry-interval", min=0.0,
                      help="Flat retry backoff in seconds instead of the default 15 s .. 2 h table.")
_CALL_TIMEOUT = typer.Option(
    None, "--call-timeout",
    help="Seconds one SDK call (one step) may take; then that attempt fails and is retried per the "
         "function's retries. Default 7200 (2 h), or AGENTCMD_ENGINE_CALL_TIMEOUT.")
_APP_WAIT_TIMEOUT = typer.Option(
    None, "--app-wait-timeout",
    help="Seconds a run may wait for an app that does not answer (not listening, restarting) before it "
         "fails; such calls use no retry. Default 900 (15 min), or AGENTCMD_ENGINE_APP_WAIT_TIMEOUT.")
_RETENTION = typer.Option(
    None, "--retention", metavar="AGE",
    help="How long finished runs (with their steps, history and events) are kept before the engine prunes "
         "them in the background: 30d, 12h, 90m, 3600 (seconds); 0 or forever keeps every run. Default 30d, "
         "or AGENTCMD_ENGINE_RETENTION.")
_GRACE = typer.Option(10.0, "--grace", min=0.0,
                      help="Seconds queue work gets to commit on shutdown (SDK calls in flight are interrupted "
                           "at once and run again, same attempt, at the next start).")
_ALLOWED_HOST = typer.Option(
    None, "--allowed-host", metavar="NAME",
    help="Also answer requests addressed to this host name (repeatable; loopback names and the bind host "
         "always are). Or AGENTCMD_ALLOWED_HOSTS, comma separated.")
_DASHBOARD_AUTH = typer.Option(False, "--dashboard-auth",
                               help="Ask for the dashboard token (agentcmd config dashboard-token) even on loopback.")
_CONNECT_PORT = typer.Option(
    None, "--connect-port", min=0, max=65535,
    help="Port of the connect gateway, where connect workers (the SDK's inngest.connect, agentcmd worker) "
         "open their WebSocket. Default: the engine's port + 1 (skipped with a warning when taken), or "
         "AGENTCMD_ENGINE_CONNECT_PORT; an explicit port that is taken stops the start.")
_NO_CONNECT = typer.Option(False, "--no-connect",
                           help="Run without the connect gateway: apps are served over HTTP only "
                                "(or AGENTCMD_ENGINE_CONNECT=false).")


class EngineLogFormat(enum.StrEnum):
    PLAIN = "plain"
    JSON = "json"


_LOG_FORMAT = typer.Option(
    None, "--log-format", case_sensitive=False,
    help="plain (default) or json: one JSON object per line, with run_id and step_id on every line about a run "
         "(or AGENTCMD_LOG_FORMAT).")
_PASSIVE_SYNC = typer.Option(
    False, "--passive-sync",
    help="Never PUT the --sdk-url apps: they register themselves (agentcmd dev/start sync the app once it "
         "listens). Until each has registered once (at most 2 min), events that match nothing wait for it.")


def _call_timeout_flag(value: float | None) -> float | None:
    """``--call-timeout`` checked here, so a bad value is blamed on the flag (not on the env var)."""
    if value is None:
        return None
    from agentcmd.config.settings import check_call_timeout

    return check_call_timeout(value, "--call-timeout")


def _app_wait_flag(value: float | None) -> float | None:
    """``--app-wait-timeout`` checked here, so a bad value is blamed on the flag."""
    if value is None:
        return None
    from agentcmd.config.settings import check_app_wait_timeout

    return check_app_wait_timeout(value, "--app-wait-timeout")


def _retention_flag(value: str | None) -> str | None:
    """``--retention`` checked here, so a bad value is blamed on the flag (not on the env var)."""
    if value is None:
        return None
    from agentcmd.engine.retentionage import format_retention, parse_retention

    return format_retention(parse_retention(value, "--retention"))


def _retention_seconds(value: str) -> float | None:
    from agentcmd.engine.retentionage import parse_retention

    return parse_retention(value)


def _export_log_format(value: EngineLogFormat | None) -> None:
    """``--log-format`` reaches the server's logging setup through AGENTCMD_LOG_FORMAT (observe/runlog.py)."""
    if value:
        import os

        from agentcmd.observe.runlog import LOG_FORMAT_ENV

        os.environ[LOG_FORMAT_ENV] = value.value


def _allowed_hosts(configured: str, flags: list[str] | None) -> list[str]:
    """AGENTCMD_ALLOWED_HOSTS plus every --allowed-host, checked now (a bad name exits 2 before binding)."""
    from agentcmd.httpedge.hosts import parse_allowed

    return parse_allowed([configured, *(flags or [])])


@app.command("dev")
def dev(
    host: str = _HOST,
    port: int = _PORT,
    sdk_url: list[str] = _SDK_URL,
    no_discovery: bool = typer.Option(False, "--no-discovery", help="Do not scan local ports for apps."),
    poll_interval: float = typer.Option(5.0, "--poll-interval", min=0.1, help="Seconds between app re-syncs."),
    retry_interval: float = _RETRY,
    call_timeout: float | None = _CALL_TIMEOUT,
    app_wait_timeout: float | None = _APP_WAIT_TIMEOUT,
    retention: str | None = _RETENTION,
    grace: float = _GRACE,
    dashboard_auth: bool = _DASHBOARD_AUTH,
    passive_sync: bool = _PASSIVE_SYNC,
    allowed_host: list[str] = _ALLOWED_HOST,
    log_format: EngineLogFormat | None = _LOG_FORMAT,
    connect_port: int | None = _CONNECT_PORT,
    no_connect: bool = _NO_CONNECT,
    allow_remote_dev: bool = typer.Option(
        False, "--allow-remote-dev", help="Allow a non-loopback --host in dev mode (no auth: trusted networks only)."),
) -> None:
    """Engine in dev mode: no auth, state in memory (gone on exit)."""
    import sys

    _export_log_format(log_format)
    from agentcmd.config import load_settings
    from agentcmd.engine.app import EngineConfig
    from agentcmd.engine.serve import serve
    from agentcmd.mode import Mode
    from agentcmd.webauth import check_bind
    from agentcmd.webauth.guard import WebAuth

    warning = check_bind(Mode.DEV, host, allow_remote_dev)
    settings = load_settings(engine_call_timeout=_call_timeout_flag(call_timeout),
                             engine_app_wait_timeout=_app_wait_flag(app_wait_timeout),
                             engine_retention=_retention_flag(retention), engine_connect_port=connect_port)
    token = settings.secret("dashboard_token") if dashboard_auth else None
    # Fails before binding if a login is needed but impossible. (WebAuth directly, not the
    # dashboard module: that imports FastAPI, which would double the time to ready.)
    from agentcmd.webauth.options import WebOptions

    web = WebOptions.from_settings(settings)
    WebAuth.build(Mode.DEV, host, dashboard_auth, token, options=web)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    config = EngineConfig(mode="dev", db_path=None, sdk_urls=list(sdk_url or []), poll_interval=poll_interval,
                          discovery=not no_discovery, retry_interval_s=retry_interval,
                          call_timeout_s=settings.engine_call_timeout,
                          app_wait_timeout_s=settings.engine_app_wait_timeout, grace_s=grace, host=host,
                          dashboard_auth=dashboard_auth, dashboard_token=token, web=web,
                          allowed_hosts=_allowed_hosts(settings.allowed_hosts, allowed_host))
    config.passive_sync = passive_sync
    config.retention_s = _retention_seconds(settings.engine_retention)
    config.connect = settings.engine_connect and not no_connect
    config.connect_port = settings.engine_connect_port
    raise typer.Exit(serve(config, host, port))


@app.command("start")
def start(
    host: str = _HOST,
    port: int = _PORT,
    event_key: str = typer.Option(None, "--event-key", help="Event key senders must use (or INNGEST_EVENT_KEY)."),
    signing_key: str = typer.Option(None, "--signing-key",
                                    help="Hex signing key shared with the SDK (or INNGEST_SIGNING_KEY)."),
    sqlite_dir: str = typer.Option(None, "--sqlite-dir",
                                   help="Directory of the engine database (default $AGENTCMD_HOME/data/engine)."),
    sdk_url: list[str] = _SDK_URL,
    poll_interval: float = typer.Option(5.0, "--poll-interval", min=0.1,
                                        help="Seconds between retries of apps that failed to sync."),
    retry_interval: float = _RETRY,
    call_timeout: float | None = _CALL_TIMEOUT,
    app_wait_timeout: float | None = _APP_WAIT_TIMEOUT,
    retention: str | None = _RETENTION,
    grace: float = _GRACE,
    dashboard_auth: bool = _DASHBOARD_AUTH,
    passive_sync: bool = _PASSIVE_SYNC,
    allowed_host: list[str] = _ALLOWED_HOST,
    log_format: EngineLogFormat | None = _LOG_FORMAT,
    connect_port: int | None = _CONNECT_PORT,
    no_connect: bool = _NO_CONNECT,
) -> None:
    """Engine in production mode: SQLite file (history and in-flight runs persist), keys required."""
    from pathlib import Path

    _export_log_format(log_format)
    from agentcmd.config import load_settings
    from agentcmd.engine.app import EngineConfig
    from agentcmd.engine.serve import serve
    from agentcmd.engine.store import DB_FILE_NAME
    from agentcmd.errors import ConfigError
    from agentcmd.handover import key

    # The supervisor hands the keys over by pipe (agentcmd.handover), keeping them out of /proc/<pid>/environ.
    settings = load_settings(event_key=event_key or key("INNGEST_EVENT_KEY"),
                             signing_key=signing_key or key("INNGEST_SIGNING_KEY"),
                             sqlite_dir=Path(sqlite_dir) if sqlite_dir else None,
                             engine_call_timeout=_call_timeout_flag(call_timeout),
                             engine_app_wait_timeout=_app_wait_flag(app_wait_timeout),
                             engine_retention=_retention_flag(retention), engine_connect_port=connect_port)
    sk = settings.secret("signing_key")
    ek = settings.secret("event_key")
    if not sk:
        raise ConfigError("no signing key: 'agentcmd engine start' needs one to sign requests to the SDK",
                          "run 'agentcmd install', or set INNGEST_SIGNING_KEY (e.g. to "
                          "'signkey-prod-' + the output of 'openssl rand -hex 32'), or pass --signing-key")
    if not ek:
        raise ConfigError("no event key: 'agentcmd engine start' only accepts events sent with a key",
                          "run 'agentcmd install', or set INNGEST_EVENT_KEY, or pass --event-key")
    from agentcmd.mode import Mode
    from agentcmd.webauth.guard import WebAuth
    from agentcmd.webauth.options import WebOptions

    token = settings.secret("dashboard_token")
    web = WebOptions.from_settings(settings)
    WebAuth.build(Mode.PRODUCTION, host, dashboard_auth, token, options=web)  # beyond loopback: needs a token
    config = EngineConfig(mode="production", db_path=settings.resolved_sqlite_dir / DB_FILE_NAME,
                          event_keys=[ek], signing_key=sk, sdk_urls=list(sdk_url or []),
                          poll_interval=poll_interval, retry_interval_s=retry_interval,
                          call_timeout_s=settings.engine_call_timeout,
                          app_wait_timeout_s=settings.engine_app_wait_timeout, grace_s=grace, host=host,
                          dashboard_auth=dashboard_auth, dashboard_token=token, web=web,
                          allowed_hosts=_allowed_hosts(settings.allowed_hosts, allowed_host))
    config.passive_sync = passive_sync
    config.retention_s = _retention_seconds(settings.engine_retention)
    config.connect = settings.engine_connect and not no_connect
    config.connect_port = settings.engine_connect_port
    raise typer.Exit(serve(config, host, port))


from agentcmd.cli.prune import prune as _prune  # noqa: E402  (its own module; registered here)

app.command("prune")(_prune)
