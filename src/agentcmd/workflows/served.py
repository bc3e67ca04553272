"""Which source serves each workflow id, remembered so a duplicate never takes a workflow over.

``discover`` serves the first definition of an id by file name. Alone that
is not enough: a new file that sorts earlier (``0_fix.py`` next to
``fix.py``) would take the id over at the next start, and the runs of the
existing workflow (finished ones drawn with its phases, in-flight ones
resumed with its steps) would get the newcomer's code. So the app server
records, per project, the source each served id came from in
``<data dir>/workflow-sources.json`` and passes it back to ``discover`` as
``keep``; the newcomer is reported as a duplicate instead.

``discover_served`` is what the app server calls at start and on a reload
(pass the previous ``Discovered`` as ``previous``: what is being served
right now wins over the file). ``agentcmd workflows list`` without an app
server reads the record but never writes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

from agentcmd.workflows.loading import Discovered, discover

RECORD_NAME = "workflow-sources.json"
log = logging.getLogger("agentcmd.workflows")


def record_path(data_dir: Path) -> Path:
    return data_dir / RECORD_NAME


def _read_all(data_dir: Path) -> dict[str, dict[str, str]]:
    try:
        raw = json.loads(record_path(data_dir).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # unreadable: start over rather than refuse to serve
        log.warning("ignoring %s (%s); the first definition of each workflow id is served",
                    record_path(data_dir), exc)
        return {}
    projects = raw.get("projects") if isinstance(raw, dict) else None
    if not isinstance(projects, dict):
        return {}
    return {str(p): {str(k): str(v) for k, v in ids.items()} for p, ids in projects.items() if isinstance(ids, dict)}


def load(data_dir: Path, project_dir: Path | None) -> dict[str, str]:
    """Workflow id -> source recorded for this project (empty when none)."""
    if project_dir is None:
        return {}
    return _read_all(data_dir).get(str(project_dir), {})


def save(data_dir: Path, project_dir: Path | None, discovered: Discovered) -> None:
    """Record the sources now served (atomically, 0600); a failure is logged, never raised."""
    if project_dir is None:
        return
    sources = discovered.sources()
    try:
        records = _read_all(data_dir)
        if records.get(str(project_dir)) == sources:
            return
        records[str(project_dir)] = sources
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=f".{RECORD_NAME}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump({"version": 1, "projects": records}, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, record_path(data_dir))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    except OSError as exc:
        log.warning("could not record which files serve the workflows in %s: %s", record_path(data_dir), exc)


def discover_served(project_dir: Path | None, data_dir: Path, *, entry_points: bool = True,
                    previous: Discovered | None = None, record: bool = True) -> Discovered:
    """``discover`` keeping each id with the source that already serves it; records the result."""
    keep = load(data_dir, project_dir)
    if previous is not None:
        keep.update(previous.sources())
    found = discover(project_dir, entry_points=entry_points, keep=keep)
    if record:
        save(data_dir, project_dir, found)
    return found
