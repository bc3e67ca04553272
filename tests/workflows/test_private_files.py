"""What workflows leave in the data directory is private: artifacts 0600 in 0700 directories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_artifacts_and_their_directories_are_private(app_server: Any, write_workflow: Any, project: Path) -> None:
    (project / "report.txt").write_text("all good")
    os.chmod(project / "report.txt", 0o644)
    write_workflow("keep.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="keep", retries=0)
        async def body(ctx, step):
            a = await step.artifact("report", "report.txt")
            b = await step.artifact("notes", "some text")
            return [a["path"], b["path"]]
    ''')
    run = app_server().driver.run("keep")
    assert run.status == "Completed", run.calls[-1]
    report, notes = (Path(p) for p in run.output)
    run_dir = report.parent
    data_dir = run_dir.parent.parent
    assert report.read_text() == "all good" and notes.read_text() == "some text"
    assert {p.name: p.stat().st_mode & 0o777 for p in (report, notes)} == {"report": 0o600, "notes": 0o600}
    for directory in (run_dir, run_dir.parent):           # artifacts/<run>/ and artifacts/
        assert directory.stat().st_mode & 0o777 == 0o700, directory
    assert data_dir.stat().st_mode & 0o777 == 0o700
