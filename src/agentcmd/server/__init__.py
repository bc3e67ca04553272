"""The app server (FastAPI, port 4100): the official SDK's ``serve()`` at
``/api/workflows/inngest`` for the discovered workflows, plus the app API.

Started by the supervisor as ``python -m agentcmd.server --host H --port P
[--project DIR]``; its SDK environment (``INNGEST_DEV`` or keys and
``INNGEST_BASE_URL``) comes from ``agentcmd.inngest_env``.
"""

SERVE_PATH = "/api/workflows/inngest"
