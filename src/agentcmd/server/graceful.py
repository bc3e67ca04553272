"""The app server's uvicorn ``Server``: a signal starts the app's own shutdown, and exits 0.

uvicorn's handler only asks the server to stop; this one first starts
``shutdown.current.begin`` (stop the steps' process groups, answer in-flight
SDK calls 503-interrupted), and after uvicorn has closed every connection it
waits until each step command's group is gone (``process.stop_all``), so
nothing outlives the app. uvicorn re-raises a caught signal once it has
stopped, which would end the process "killed by SIGTERM"; a stop that was
asked for and went cleanly exits 0 instead.
"""

from __future__ import annotations

import signal
import socket
from types import FrameType

import uvicorn

from agentcmd.server import shutdown
from agentcmd.workflows.process import stop_all


class GracefulServer(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        shutdown.current.begin_from_signal()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for connections
        else:
            self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        shutdown.current.begin()  # also when stopped without a signal (should_exit set by code)
        await super().shutdown(sockets)
        await stop_all()
