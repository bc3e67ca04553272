"""The stylesheet and live-update script both UIs serve (``static/``), from package data.

The engine dashboard serves them at ``/_dashboard/static/``, the workflow
views at ``/_ui/static/`` (each UI's access rules name its own prefix).
Only the files listed here are served: a name is never turned into a path.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from starlette.responses import Response

STATIC_FILES = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}


async def static_file(name: str) -> Response:
    if name not in STATIC_FILES:
        return Response("not found", status_code=404, media_type="text/plain")
    body = (resources.files("agentcmd.web") / "static" / name).read_bytes()
    return Response(body, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=300"})


def add_static_route(router: APIRouter, prefix: str) -> None:
    """``GET {prefix}{name}``: ``prefix`` ends in '/' (``/_ui/static/``)."""
    router.add_api_route(prefix + "{name}", static_file, methods=["GET"])
