"""The engine's web dashboard: server-rendered pages, each with a JSON twin.

* ``reader.py``: the ``DashboardReader`` / ``DashboardActions`` Protocols and row types.
* ``queries.py``: ``SqliteDashboardReader`` over the store's ``queries.py`` (the one read path).
* ``actions.py``: ``EngineActions``, the buttons (cancel, rerun, re-sync, send, replay, pause) on the engine's
  command facade.
* ``views.py``: ``create_router`` and the read pages; ``forms.py``: posts and login; ``render.py``: Jinja.
* ``mount.py``: ``dashboard_app(commands)``, what ``engine/app.py`` mounts at ``/``.

Auth (who may see and do what) is ``agentcmd.webauth``.
"""

from agentcmd.engine.dashboard.views import DashboardConfig, create_router

__all__ = ["DashboardConfig", "create_router"]
