"""Workflow views on the app server (port 4100, at ``/``): workflows, their phases, runs phase by phase.

``agentcmd.ui.views.create_router()`` returns a FastAPI router for
``server/app.py`` to include. Its pages read the app API's own handlers
(``agentcmd.server.api``: workflows from discovery, runs from the engine's
REST API, annotated with phases), so a page and ``/api/...`` always agree;
each page has a JSON twin. ``present.py`` turns a run into what the page
shows (phase progress, step headline and output tail, artifacts) as pure
functions. What both web UIs share is ``agentcmd.web``.
"""
