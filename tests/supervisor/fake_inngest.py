"""A stand-in for the Go ``inngest`` binary (and, in tests, for the embedded engine).

It cannot run here, so this script plays it: it appends one JSON line per
start to ``$FAKE_INNGEST_RECORD`` (argv, the INNGEST_* environment, the
names of the keys handed over by pipe as the embedded engine reads them
(``agentcmd.handover``), its pid) and serves ``GET /health`` on ``--port``. Knobs, all from the environment:

- ``FAKE_INNGEST_EXIT=N`` + ``FAKE_INNGEST_MESSAGE``: print the message to
  stderr and exit N at once (a locked database, a bad flag).
- ``FAKE_INNGEST_UNHEALTHY=1``: /health answers 503 forever.
- ``FAKE_INNGEST_IGNORE_TERM=1``: ignore SIGTERM (forces the SIGKILL path).
- ``GET /crash``: exit 3 at once, as an engine dying while running would.
- ``POST /fn/register``: an app's sync, recorded as ``{"register": ...}``.
  ``FAKE_INNGEST_REGISTER_STATUS=N`` answers N with ``{"error": "fake refusal"}``;
  ``FAKE_INNGEST_REGISTER_FUNCTIONS=N`` claims to have taken N functions.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _flag(argv: list[str], *names: str, default: str = "") -> str:
    for i, arg in enumerate(argv):
        if arg in names and i + 1 < len(argv):
            return argv[i + 1]
    return default


def main() -> None:
    argv = sys.argv[1:]
    record = os.environ.get("FAKE_INNGEST_RECORD")
    if record:
        env = {k: v for k, v in os.environ.items() if k.startswith("INNGEST_") or k == "NODE_ENV"}
        handed: list[str] = []
        if os.environ.get("AGENTCMD_SECRETS_FD"):
            with os.fdopen(int(os.environ["AGENTCMD_SECRETS_FD"]), "rb") as pipe:
                handed = sorted(json.loads(pipe.read()))
        with open(record, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"argv": argv, "env": env, "handed": handed, "pid": os.getpid()}) + "\n")
    if os.environ.get("FAKE_INNGEST_EXIT"):
        sys.stderr.write(os.environ.get("FAKE_INNGEST_MESSAGE", "fake inngest failing") + "\n")
        sys.exit(int(os.environ["FAKE_INNGEST_EXIT"]))
    healthy = not os.environ.get("FAKE_INNGEST_UNHEALTHY")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/crash":
                os._exit(3)
            status = 200 if (self.path == "/health" and healthy) else 503 if self.path == "/health" else 404
            body = json.dumps({"status": status, "message": "OK" if status == 200 else "no"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.startswith("/fn/register"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if record:
                app = json.loads(body or b"{}")
                with open(record, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"register": {"url": app.get("url"), "app": app.get("appname"),
                                                      "auth": self.headers.get("Authorization")}}) + "\n")
            reply = b'{"ok": true, "modified": true}'
            status = int(os.environ.get("FAKE_INNGEST_REGISTER_STATUS") or 200)
            if status != 200:
                reply = b'{"error": "fake refusal"}'
            elif os.environ.get("FAKE_INNGEST_REGISTER_FUNCTIONS"):
                taken = int(os.environ["FAKE_INNGEST_REGISTER_FUNCTIONS"])
                reply = json.dumps({"ok": True, "modified": True, "functions": taken}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((_flag(argv, "--host", default="127.0.0.1"),
                                  int(_flag(argv, "--port", "-p", default="8288"))), Handler)
    if os.environ.get("FAKE_INNGEST_IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"fake inngest {argv[0] if argv else '?'} listening", flush=True)
    server.serve_forever()
    print("fake inngest stopped", flush=True)


if __name__ == "__main__":
    main()
