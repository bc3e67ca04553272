"""A real Chromium driven by Playwright (Debian's ``chromium``; no browser download).

``browser`` is one Chromium per test module; ``page`` a fresh context and page
per test, whose screenshot is saved under the test's tmp dir (and its path
printed) when the test fails. Where Playwright or Chromium is missing, the
tests that use them are skipped with the reason printed, never silently.
``AGENTCMD_CHROMIUM`` points at another Chromium binary.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("AGENTCMD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set AGENTCMD_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def chromium_path() -> str:
    reason = _missing()
    if reason:
        print(f"browser tests skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        shot = tmp_path / f"{request.node.name}-failure.png"
        pg.screenshot(path=str(shot), full_page=True)
        print(f"\nscreenshot of the failing page ({pg.url}): {shot}", file=sys.stderr)
    context.close()
