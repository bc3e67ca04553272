"""Build the FastAPI app: SDK serve endpoint, health, app API."""

from __future__ import annotations

import logging
from pathlib import Path

import inngest
import inngest.fast_api
from fastapi import FastAPI

from agentcmd.server import SERVE_PATH

APP_ID = "agentcmd"
log = logging.getLogger("agentcmd.server")


def create_client() -> inngest.Inngest:
    """The SDK client; dev vs production is decided by the SDK from INNGEST_DEV."""
    return inngest.Inngest(app_id=APP_ID, logger=log)


def create_app(project_dir: Path | None = None) -> FastAPI:
    app = FastAPI(title="agentcmd app server", docs_url=None, redoc_url=None)
    client = create_client()
    functions: list[inngest.Function] = []

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "functions": len(functions)}

    inngest.fast_api.serve(app, client, functions, serve_path=SERVE_PATH)
    return app
