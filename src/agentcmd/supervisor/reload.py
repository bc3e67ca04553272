"""Reload the app server's workflows while it runs: dev's file watch, production's SIGHUP.

The app server does the reload itself (``POST /api/reload``,
``agentcmd.server.reload``): it imports the workflow files again, swaps the
functions it serves (requests in flight finish with the code they started
with, so no step is interrupted), and re-syncs the engine. This module only
decides *when*:

- ``WorkflowWatch`` (``agentcmd dev``): a thread watching
  ``<project>/.agentcmd/workflows`` with watchfiles; a change to a ``.py``
  file there asks for a reload after a 200 ms debounce, so a save lands in
  the engine well within 2 s. If the folder does not exist yet, the
  nearest existing parent is watched until it appears. It starts before
  the app server does, with a snapshot of the files: once the watch is in
  place, a difference from the snapshot asks for a reload, so a file saved
  while agentcmd was starting (after the app had read the folder, before
  the watch existed) is not missed.
- ``Reloads``: one worker thread that calls the app; requests that arrive
  while a reload runs are folded into one more reload (an editor's burst of
  saves costs two reloads, not ten); requests made before "ready" wait for
  it (``resume``). Each result is logged.

Nothing here runs in a signal handler: SIGHUP only sets a flag the
supervisor's main loop reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agentcmd.supervisor.logs import LogSink

WORKFLOWS_SUBDIR = Path(".agentcmd") / "workflows"
DEBOUNCE_MS = 200
WATCH_TIMEOUT_MS = 500
RELOAD_TIMEOUT_SECONDS = 60.0


def project_dir_of(app_argv: Sequence[str]) -> Path | None:
    """The ``--project`` the app server was given."""
    argv = list(app_argv)
    if "--project" in argv and argv.index("--project") + 1 < len(argv):
        return Path(argv[argv.index("--project") + 1])
    return None


class Reloads:
    """Serialised, coalesced reload calls to the app server, run off the supervisor's main loop."""

    def __init__(self, app_url: str, sink: LogSink, call: Callable[[str], dict[str, Any]] | None = None) -> None:
        self.app_url = app_url
        self.sink = sink
        self._call = call or _post_reload
        self._cond = threading.Condition()
        self._pending: str | None = None     # why the next reload was asked for
        self._closed = False
        self._paused = True                  # until the app is ready (resume)
        self._thread = threading.Thread(target=self._loop, name="agentcmd-reload", daemon=True)
        self._thread.start()

    def request(self, why: str) -> None:
        with self._cond:
            self._pending = why
            self._cond.notify()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while (self._pending is None or self._paused) and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                why, self._pending = str(self._pending), None
            self._reload(why)

    def _reload(self, why: str) -> None:
        from agentcmd.errors import AgentcmdError

        self.sink.info(f"reloading the workflows ({why})")
        try:
            result = self._call(self.app_url)
        except AgentcmdError as exc:
            if not self._closed:  # stopping: the app going away mid-reload is no news
                self.sink.warning(f"could not reload the workflows: {exc.what}")
            return
        describe_reload(result, self.sink)


def describe_reload(result: dict[str, Any], sink: LogSink) -> None:
    """One log line for ``POST /api/reload``'s answer (and one per load error)."""
    for err in result.get("errors") or []:
        where = f"{err.get('source')}:{err.get('line')}" if err.get("line") else str(err.get("source"))
        sink.warning(f"workflow not loaded: {where}: {err.get('error')}")
    names = ", ".join(result.get("workflows") or []) or "none"
    changes = "; ".join(f"{what}: {', '.join(result[what])}" for what in ("added", "removed") if result.get(what))
    changes = f" ({changes})" if changes else ""
    if result.get("sync_error"):
        sink.warning(f"reloaded the workflows ({names}){changes} but the engine did not take them: "
                     f"{result['sync_error']}")
    elif result.get("synced"):
        sink.info(f"reloaded the workflows and synced them with the engine: {names}{changes}",
                  workflows=result.get("workflows"))
    elif result.get("worker_mode") == "connect":
        sink.info(f"reloaded the app server's workflows: {names}{changes}; the worker reloads them next",
                  workflows=result.get("workflows"))
    else:
        sink.info(f"reloaded the workflows: none left to sync{changes}")


def post_reload(app_url: str) -> dict[str, Any]:
    """``POST /api/reload`` on the app server: its answer (what changed, whether it synced)."""
    return _post_reload(app_url)


def _post_reload(app_url: str) -> dict[str, Any]:
    from agentcmd.server.client import AppClient

    with AppClient(app_url, timeout=RELOAD_TIMEOUT_SECONDS) as client:
        body = client.post("/api/reload")
    data: dict[str, Any] = body.get("data") or {}
    return data


class WorkflowWatch:
    """A thread calling ``on_change`` when a workflow file of the project changes (``agentcmd dev``)."""

    def __init__(self, project_dir: Path, on_change: Callable[[str], None], sink: LogSink) -> None:
        self.folder = (project_dir / WORKFLOWS_SUBDIR).resolve()
        self.on_change = on_change
        self.sink = sink
        self._baseline: dict[str, tuple[int, int]] | None = self._snapshot()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agentcmd-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        """The workflow files' (mtime, size), by name."""
        out = {}
        for path in self.folder.glob("*.py") if self.folder.is_dir() else []:
            try:
                st = path.stat()
            except OSError:
                continue
            out[path.name] = (st.st_mtime_ns, st.st_size)
        return out

    def _caught_up(self) -> None:
        """Once the first watch is in place: a reload if the files changed since the snapshot."""
        if self._baseline is not None:
            baseline, self._baseline = self._baseline, None
            if self._snapshot() != baseline:
                self.on_change("changed while starting")

    def _watched(self) -> Path:
        """The workflows folder, else its nearest existing parent (watched until the folder appears)."""
        path = self.folder
        while not path.is_dir() and path != path.parent:
            path = path.parent
        return path

    def _run(self) -> None:
        try:
            import watchfiles
        except ImportError as exc:  # uvicorn[standard] brings it; say so instead of failing silently
            self.sink.warning(f"cannot watch {self.folder} for changes ({exc}); "
                              "reload with 'agentcmd workflows reload'")
            return
        while not self._stop.is_set():
            watched = self._watched()
            target = watched == self.folder
            try:
                # yield_on_timeout: an empty first yield tells us the watch is in place (_caught_up).
                for changes in watchfiles.watch(watched, stop_event=self._stop, debounce=DEBOUNCE_MS,
                                                recursive=False, raise_interrupt=False, watch_filter=None,
                                                yield_on_timeout=True, rust_timeout=WATCH_TIMEOUT_MS):
                    self._caught_up()
                    if not changes:
                        continue
                    if target:
                        files = sorted({Path(p).name for _, p in changes if p.endswith(".py")})
                        if files:
                            self.on_change(f"changed: {', '.join(files)}")
                    elif self._watched() != watched:
                        if self._watched() == self.folder and any(self.folder.glob("*.py")):
                            self.on_change(f"{self.folder} appeared")
                        break   # watch the deeper folder now
                    if target and not self.folder.is_dir():
                        self.on_change(f"{self.folder} was removed")
                        break
            except (OSError, RuntimeError) as exc:
                if self._stop.is_set():
                    return
                self.sink.warning(f"watching {watched} failed ({exc}); retrying")
                self._stop.wait(1.0)
