"""``python -m agentcmd.server --host H --port P [--project DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

SHUTDOWN_TIMEOUT_SECONDS = 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m agentcmd.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4100)
    parser.add_argument("--project", type=Path, default=None)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()

    import uvicorn

    from agentcmd.server.app import create_app

    # On SIGTERM, requests still running after 1 s (a step's command) are cancelled: the step stops its
    # process group instead of being orphaned, and the engine retries the step when the app is back.
    uvicorn.run(create_app(args.project), host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_SECONDS)


if __name__ == "__main__":
    main()
