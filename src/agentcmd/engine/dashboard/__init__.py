"""The engine's web dashboard: server-rendered pages, each with a JSON twin.

* ``reads.py``: ``DashboardReads``, the pages' queries (``agentcmd.engine.store.queries``, the one
  read path, with its row types) on the store's read connection; ``buttons.py``: the
  ``DashboardActions`` Protocol.
* ``actions.py``: ``EngineActions``, the buttons (cancel, rerun, re-sync, send, replay, pause) on the engine's
  command facade.
* ``router.py``: ``create_router``, every path; ``views.py``: the read pages; ``forms.py``: the posts;
  ``render.py``: the chrome (mode banner, nav). Rendering, the login, the stylesheet and script are
  shared with the app server's workflow views: ``agentcmd.web``.
* ``live.py``: the pages' server-sent event streams (``version``/``end``), woken by the engine's change
  notifier (``engine/changes.py``) instead of polling.
* ``mount.py``: ``dashboard_app(commands)``, what ``engine/app.py`` mounts at ``/``.

Auth (who may see and do what) is ``agentcmd.webauth``.
"""

from agentcmd.engine.dashboard.router import create_router
from agentcmd.engine.dashboard.views import DashboardConfig

__all__ = ["DashboardConfig", "create_router"]
