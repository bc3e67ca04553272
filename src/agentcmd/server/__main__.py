"""``python -m agentcmd.server --host H --port P [--project DIR] [--dashboard-auth] [--allow-remote-dev]``.

The bind host decides the auth (``agentcmd.server.access``): a dev app
server refuses a non-loopback host unless ``--allow-remote-dev`` (and then
warns), and a production one beyond loopback needs a dashboard token and a
signing key. A refusal exits 2 with "error:/fix:" lines, before binding.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

SHUTDOWN_TIMEOUT_SECONDS = 4
"""Upper bound for in-flight requests at shutdown; SDK calls are answered at once and their steps'
commands get ``SHUTDOWN_GRACE_SECONDS`` (2 s) between SIGTERM and SIGKILL."""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m agentcmd.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4100)
    parser.add_argument("--project", type=Path, default=None)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--dashboard-auth", action="store_true",
                        help="Ask for the dashboard token on the workflow views even on loopback.")
    parser.add_argument("--allow-remote-dev", action="store_true",
                        help="Dev mode on a non-loopback --host (no auth: trusted networks only).")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="Also answer requests addressed to this host name (repeatable; loopback names and "
                             "the bind host always are). Or AGENTCMD_ALLOWED_HOSTS, comma separated.")
    args = parser.parse_args()

    from agentcmd.errors import AgentcmdError
    from agentcmd.server.access import check_bind, sdk_mode

    try:
        warning = check_bind(sdk_mode(), args.host, args.allow_remote_dev)
        from agentcmd.server.app import app_auth

        auth = app_auth(args.host, args.dashboard_auth)
        from agentcmd.httpedge.hosts import parse_allowed

        allowed_hosts = parse_allowed(args.allowed_host)  # a bad name exits 2 here, before binding
    except AgentcmdError as exc:
        print(f"error: {exc.what}", file=sys.stderr)
        if exc.fix:
            print(f"fix: {exc.fix}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    if warning:
        print(warning, file=sys.stderr, flush=True)

    import uvicorn

    from agentcmd.observe import runlog

    runlog.configure_logging(text_too=False)   # JSON lines with run/step ids if AGENTCMD_LOG_FORMAT=json (runlog.py)
    from agentcmd.server.app import create_app
    from agentcmd.server.graceful import GracefulServer

    # On SIGTERM/SIGINT the running steps' process groups are stopped and the SDK calls in flight are
    # answered 503-interrupted (server/shutdown.py): the engine calls those steps again when the app is
    # back, without counting a failed attempt. Exit status 0, no process left behind.
    app = create_app(args.project, host=args.host, auth=auth, allowed_hosts=allowed_hosts)
    from agentcmd.server.notify import address_of

    app.state.address = address_of(args.host, args.port)  # the runs' links in notifications
    from agentcmd.httpedge.redact import install_access_log_filter

    install_access_log_filter()  # the access log never shows an event key (/e/<key> paths)
    # The web stack, the SDK and the workflows are imported now and live as long as the process:
    # out of the collector's reach, full collections stop pausing the server for tens of ms.
    gc.freeze()
    config = uvicorn.Config(app, host=args.host, port=args.port, proxy_headers=False,  # trusted proxies: webauth.proxy
                            log_level=args.log_level, **runlog.uvicorn_log_options(),
                            timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_SECONDS)
    GracefulServer(config).run()


if __name__ == "__main__":
    main()
