"""The two web UIs share ``agentcmd.web`` instead of copying each other, and the app server's stays engine-free.

* Loading the app server's UI (or the whole app server) imports no ``agentcmd.engine`` module: checked in
  a fresh interpreter, so nothing an earlier test imported can hide an import.
* Every template and static file of the UIs is package data (a wheel or an editable install carries it).
* Route handlers are module-level functions, and a page and its JSON twin are one handler.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from agentcmd.mode import Mode
from agentcmd.webauth.guard import WebAuth

SRC = Path(__file__).resolve().parents[2] / "src" / "agentcmd"


@pytest.mark.parametrize("module", ["agentcmd.ui.views", "agentcmd.server.app", "agentcmd.web.login"])
def test_the_app_servers_ui_imports_nothing_of_the_engine(module: str) -> None:
    code = (f"import importlib, json, sys; importlib.import_module({module!r}); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('agentcmd.engine'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == [], f"{module} pulls in engine modules"


def test_every_template_and_static_file_is_package_data() -> None:
    globs = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = globs["agentcmd"]
    files = [p.relative_to(SRC).as_posix() for folder in ("web", "ui", "engine/dashboard")
             for p in (SRC / folder).rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert any(f.startswith("web/static/") for f in files) and any(f.startswith("web/templates/") for f in files)
    missing = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in patterns)]
    assert missing == [], f"not in [tool.setuptools.package-data]: {missing}"


def _routers() -> dict[str, APIRouter]:
    from agentcmd.engine.dashboard import DashboardConfig, create_router
    from agentcmd.ui.views import create_router as ui_router

    auth = WebAuth.build(Mode.DEV, "127.0.0.1", False, None)
    return {"ui": ui_router(auth),
            "engine": create_router(None, DashboardConfig(Mode.DEV, auth), None)}  # type: ignore[arg-type]


def test_route_handlers_are_module_level_functions() -> None:
    for name, router in _routers().items():
        nested = [(r.path, r.endpoint.__qualname__) for r in router.routes
                  if isinstance(r, APIRoute) and "<locals>" in r.endpoint.__qualname__]
        assert nested == [], f"{name}: handlers defined inside a function: {nested}"


def test_a_page_and_its_json_twin_are_one_handler() -> None:
    for name, router in _routers().items():
        gets = {r.path: r.endpoint for r in router.routes if isinstance(r, APIRoute) and "GET" in r.methods}
        twins = [p for p in gets if p.endswith(".json")]
        assert len(twins) >= 3, (name, sorted(gets))
        for twin in twins:
            page = twin.removesuffix(".json") or "/"
            page = "/" if page == "/index" else page
            assert page in gets, f"{name}: {twin} has no page"
            assert gets[page] is gets[twin], f"{name}: {page} and {twin} are served by two functions"


def test_both_uis_serve_the_same_stylesheet_and_script() -> None:
    for name, router in _routers().items():
        statics = {r.endpoint for r in router.routes if isinstance(r, APIRoute) and "static" in r.path}
        assert len(statics) == 1, (name, statics)
        from agentcmd.web.static import static_file

        assert statics == {static_file}
