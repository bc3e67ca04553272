"""The Restate side of connect_bench.py: its server from npm, W10 on its Python SDK, one worker process.

* The server is ``@restatedev/restate-server``, pinned in ``benchmarks/restate/package.json``
  and its lockfile, installed on first use with ``npm ci --ignore-scripts`` (no postinstall:
  the package's only script is a download counter) into a cache directory
  (``--restate-cache``, default ``~/.cache/agentcmd-bench/restate-<version>``). The platform
  binary is run directly, not through the package's node wrapper, so its PID is the one
  whose CPU is measured and stopped.
* It runs with its defaults (one node, all roles, the replicated loglet with replication 1
  on its own log-server, RocksDB with the write-ahead log fsynced: always persistent),
  except for loopback ports picked free, ``--listen-mode tcp`` (no unix sockets) and telemetry
  off. Its data lives in a temp dir removed afterwards.
* The worker (``_restate_worker.py``, run by connect_bench.py as ``--serve-restate PORT``)
  is registered through the admin API (``POST /deployments``) and invoked through the
  ingress (``POST /Bench/run``, which answers with the handler's output once the
  invocation ended).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import free_port, spawn, stop_process

PACKAGE_DIR = Path(__file__).resolve().parent / "restate"
SERVER_PACKAGE = "@restatedev/restate-server"


class RestateUnavailable(RuntimeError):
    """Restate's server or SDK cannot be had here: the message says what to install."""


def server_version() -> str:
    deps = json.loads((PACKAGE_DIR / "package.json").read_text())["dependencies"]
    return str(deps[SERVER_PACKAGE])


def default_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "agentcmd-bench" / f"restate-{server_version()}"


def _binary_package() -> str:
    system = {"Linux": "linux", "Darwin": "darwin"}.get(platform.system())
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    if system is None or arch is None:
        raise RestateUnavailable(f"{SERVER_PACKAGE} ships binaries for linux/darwin on x64/arm64, "
                                 f"not {platform.system()}/{platform.machine()}")
    return f"{SERVER_PACKAGE}-{system}-{arch}"


def check_sdk() -> None:
    """The Python side: a clear error naming the extra to install, before any process starts."""
    try:
        import hypercorn  # noqa: F401
        import restate  # noqa: F401
    except ImportError as exc:
        raise RestateUnavailable(f"the Restate worker needs restate-sdk and hypercorn ({exc}); install them "
                                 "with: .venv/bin/pip install -e '.[bench]'") from None


def ensure_server(cache: Path) -> Path:
    """The restate-server binary, installed with ``npm ci`` into ``cache`` on first use."""
    binary = cache / "node_modules" / _binary_package() / "bin" / "restate-server"
    stamp = cache / "package-lock.json"
    if binary.exists() and stamp.exists() and stamp.read_bytes() == (PACKAGE_DIR / "package-lock.json").read_bytes():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise RestateUnavailable(f"npm is not on PATH: it installs {SERVER_PACKAGE} {server_version()} for the "
                                 "Restate side (install Node.js and npm, or leave restate out of --systems)")
    cache.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PACKAGE_DIR / name, cache / name)
    try:
        done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=cache,
                              capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise RestateUnavailable(f"npm ci of {SERVER_PACKAGE} in {cache} took over 10 minutes") from None
    if done.returncode != 0 or not binary.exists():
        stamp.unlink(missing_ok=True)   # not a finished install: try again next time
        raise RestateUnavailable(f"npm ci of {SERVER_PACKAGE} {server_version()} in {cache} failed "
                                 f"(exit {done.returncode}); no {binary.name} at {binary}:\n"
                                 f"{(done.stdout + done.stderr)[-2000:]}")
    return binary


def _http(method: str, url: str, body: Any = None, timeout: float = 5) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class RestateServer:
    """``restate-server`` on free loopback ports, its data in a temp dir, stopped by PID."""

    def __init__(self, cache: Path) -> None:
        binary = ensure_server(cache)
        self.root = Path(tempfile.mkdtemp(prefix="agentcmd-restate-"))
        node, admin, ingress = free_port(), free_port(), free_port()
        self.admin_url = f"http://127.0.0.1:{admin}"
        self.ingress_url = f"http://127.0.0.1:{ingress}"
        conf = self.root / "restate.toml"
        conf.write_text(f'bind-address = "127.0.0.1:{node}"\n'
                        f'advertised-address = "http://127.0.0.1:{node}/"\n'
                        'disable-telemetry = true\n'
                        'log-filter = "warn"\n'
                        f'[admin]\nbind-address = "127.0.0.1:{admin}"\n'
                        f'[ingress]\nbind-address = "127.0.0.1:{ingress}"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_")}
        env["SCARF_ANALYTICS"] = "false"
        self.log_path = self.root / "restate.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = spawn([str(binary), "--config-file", str(conf), "--base-dir", str(self.root / "data"),
                           "--listen-mode", "tcp", "--no-logo", "--node-name", "bench"],
                          env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root)
        self.wait_ready()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"restate-server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if (_http("GET", self.admin_url + "/health")[0] == 200
                        and _http("GET", self.ingress_url + "/restate/health")[0] == 200):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"restate-server not ready after {timeout:.0f} s:\n{self.log()}")

    def register(self, uri: str, worker_failed: Callable[[], str | None], timeout: float = 60) -> None:
        """Register the worker's deployment; retried while the worker is still starting.

        ``worker_failed`` says why the worker process is gone (None while it runs).
        """
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            failed = worker_failed()
            if failed:
                raise RuntimeError(f"the Restate worker exited: {failed}")
            try:
                status, last = _http("POST", self.admin_url + "/deployments", {"uri": uri, "force": True}, timeout=10)
                if status in (200, 201):
                    return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise RuntimeError(f"registering {uri} with restate failed: {last}")

    def stop(self) -> None:
        stop_process(self.proc, 30)
        self._log.close()
        if not os.environ.get("LOAD_BENCH_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)
