"""What notify keeps on disk: each run's last delivery status, and the watcher's cursor.

``<data dir>/runs/<run id>/notifications.json`` (0600, directories 0700)
holds one entry per (event, question, target): the target's name, type and
host (never its URL: it is a secret), the status (``pending``,
``retrying``, ``delivered``, ``failed``, ``dropped``, ``unavailable``),
attempts, the last error and times. It is what the run page and
``GET /api/runs/{id}`` show, and what makes a delivery happen once, also
across an app server restart: an entry in a final status is never sent
again. Each entry also keeps the notice it is about (``notice``: the JSON
body minus nothing secret), so that ``<data dir>/notifications/pending.json``
(the ids of runs with an entry not yet final) lets a restarted app server
finish what a stop cut off, however old. ``<data dir>/notifications/cursor.json``
is the ``ended_at`` (epoch ms) up to which the watcher has seen run ends.

Writes replace the file atomically (a temporary file renamed over it) and
are serialised by one lock: several deliveries of one run finish at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from agentcmd.privatefs import ensure_private_dir, write_private_file
from agentcmd.safenames import is_plain_name

FINAL = ("delivered", "failed", "dropped", "unavailable")
FILE_NAME = "notifications.json"
_lock = threading.Lock()


def status_path(data_dir: Path, run_id: str) -> Path:
    """``<data dir>/runs/<run id>/notifications.json``; ValueError unless ``run_id`` is one plain name."""
    if not is_plain_name(run_id):
        raise ValueError(f"{run_id[:80]!r} is not a run id")
    return data_dir / "runs" / run_id / FILE_NAME


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    found = doc.get("deliveries") if isinstance(doc, dict) else None
    return [d for d in found or [] if isinstance(d, dict)]


def _write(path: Path, run_id: str, deliveries: list[dict[str, Any]]) -> None:
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    write_private_file(tmp, json.dumps({"run_id": run_id, "deliveries": deliveries}, indent=1).encode())
    os.replace(tmp, path)


def key_of(entry: dict[str, Any]) -> tuple[str, str, str]:
    return str(entry.get("event")), str(entry.get("question") or ""), str(entry.get("target"))


def deliveries(data_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """The run's delivery entries, oldest first; ``[]`` when nothing was sent (or the id is no run id)."""
    try:
        path = status_path(data_dir, run_id)
    except ValueError:
        return []
    return _read(path)


def find(data_dir: Path, run_id: str, key: tuple[str, str, str]) -> dict[str, Any] | None:
    return next((d for d in deliveries(data_dir, run_id) if key_of(d) == key), None)


def record(data_dir: Path, run_id: str, entry: dict[str, Any]) -> None:
    """Put ``entry`` in place of the run's entry with the same key (or append it); keep ``pending.json`` true."""
    path = status_path(data_dir, run_id)
    with _lock:
        found = _read(path)
        key = key_of(entry)
        found = [entry if key_of(d) == key else d for d in found]
        if not any(key_of(d) == key for d in found):
            found.append(entry)
        _write(path, run_id, found)
        pending = set(_pending(data_dir))
        open_ = any(d.get("status") not in FINAL for d in found)
        if open_ != (run_id in pending):
            pending = pending | {run_id} if open_ else pending - {run_id}
            _write_json(pending_path(data_dir), {"runs": sorted(pending)})


def pending_path(data_dir: Path) -> Path:
    return data_dir / "notifications" / "pending.json"


def _pending(data_dir: Path) -> list[str]:
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        runs = json.loads(pending_path(data_dir).read_text()).get("runs")
        return [r for r in runs or [] if isinstance(r, str) and is_plain_name(r)]
    return []


def unfinished(data_dir: Path) -> list[dict[str, Any]]:
    """Every entry not yet final, of every run in ``pending.json``: what a restart takes up again."""
    with _lock:
        runs = _pending(data_dir)
    return [d for run_id in runs for d in deliveries(data_dir, run_id) if d.get("status") not in FINAL]


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_private_file(tmp, json.dumps(doc).encode())
    os.replace(tmp, path)


def cursor_path(data_dir: Path) -> Path:
    return data_dir / "notifications" / "cursor.json"


def read_cursor(data_dir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        value = json.loads(cursor_path(data_dir).read_text()).get("ended_after")
        return int(value) if value is not None else None
    return None


def write_cursor(data_dir: Path, ended_after: int) -> None:
    with _lock:
        _write_json(cursor_path(data_dir), {"ended_after": ended_after})
