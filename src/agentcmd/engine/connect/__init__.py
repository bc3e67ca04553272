"""Connect: apps that dial out to the engine over a WebSocket instead of serving HTTP.

The official SDKs' ``connect`` (``inngest.connect`` with the ``inngest[connect]``
extra) asks ``POST /v0/connect/start`` for a gateway address and a token, opens
a WebSocket to the gateway (by default the engine's port + 1, like the dev
server) and receives executor requests over it. What the engine shows of the
connected workers is ``view.py``; the gateway itself lives beside it.
"""
