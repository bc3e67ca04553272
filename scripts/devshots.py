"""What the docs' screenshot scripts share: a throwaway ``agentcmd dev`` and a headless Chromium page.

``approval_screenshots.py`` and ``live_transcript_screenshots.py`` each
start ``agentcmd dev`` for a project written into a temporary directory,
wait for it, drive Debian's Chromium through Playwright and stop what they
started by PID. The scripts differ only in their workflows and what they
photograph, so the rest lives here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("AGENTCMD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def out_dir(doc: str) -> Path | None:
    """The ``--out`` directory from the command line, or None (after saying why) when there is no Chromium."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="where to write the PNG files")
    out: Path = parser.parse_args().out
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set AGENTCMD_CHROMIUM)", file=sys.stderr)
        return None
    return out


@dataclass
class Dev:
    """A running ``agentcmd dev``: its app server's URL and the temporary directory it lives in."""

    url: str
    tmp: Path


@contextmanager
def dev_server(workflows: dict[str, str], env: dict[str, str] | None = None,
               prepare: Callable[[Path], dict[str, str]] | None = None) -> Iterator[Dev]:
    """Start ``agentcmd dev`` for a project holding ``workflows`` (file name: source); stop it by PID after.

    ``prepare(tmp)`` may write files next to the project and return more environment variables. The
    caller's ``INNGEST_*`` and ``AGENTCMD_*`` variables are left out, so its own setup does not leak in.
    """
    with tempfile.TemporaryDirectory(prefix="agentcmd-shots-") as tmp_name:
        tmp = Path(tmp_name)
        project = tmp / "project"
        (project / ".agentcmd" / "workflows").mkdir(parents=True)
        for name, source in workflows.items():
            (project / ".agentcmd" / "workflows" / name).write_text(source)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_"))}
        child_env["AGENTCMD_HOME"] = str(tmp / "home")
        child_env.update(env or {})
        if prepare is not None:
            child_env.update(prepare(tmp))
        app_port, engine_port = free_port(), free_port()
        with (tmp / "dev.log").open("w") as log:
            child = subprocess.Popen([sys.executable, "-m", "agentcmd", "dev", "--port", str(app_port),
                                      "--engine-port", str(engine_port), "--project", str(project)],
                                     env=child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                wait(lambda: "ready in " in (tmp / "dev.log").read_text(), 60, "agentcmd dev")
                yield Dev(f"http://127.0.0.1:{app_port}", tmp)
            finally:
                child.terminate()  # SIGTERM to the supervisor we started: it stops its engine and app server
                child.wait(timeout=30)


@contextmanager
def chromium_page(height: int) -> Iterator[Any]:
    """A light-scheme, 1100 px wide page of a headless Chromium, closed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            yield browser.new_page(viewport={"width": 1100, "height": height}, color_scheme="light")
        finally:
            browser.close()
