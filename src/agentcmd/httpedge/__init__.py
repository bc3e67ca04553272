"""The HTTP edge both servers share: what a request must look like before any route sees it.

The engine (:8288) and the app server (:4100) each wrap their ASGI app in
``EdgeMiddleware`` (``middleware.py``) with their own ``EdgePolicy``:

* ``hosts``: a ``Host`` allow-list, against DNS rebinding (a page on
  ``rebind.example`` whose name later resolves to 127.0.0.1).
* ``browser``: state-changing requests from another site are refused, and
  routes with no key/bearer/signature accept only ``application/json``
  (a browser cannot send that cross-site without a CORS preflight, which
  neither server answers).
* ``limits``: body size limits (413), checked on ``Content-Length`` and
  counted while the body streams in, before any route reads it.
* ``jsonbody``: strict JSON parsing (UTF-8, no NaN/Infinity, bounded depth)
  whose every failure is a 400 ``InputError``, never a 500.
* ``redact``: the event key in ``POST /e/<key>`` paths never reaches a log.
"""

from agentcmd.httpedge.hosts import HostPolicy
from agentcmd.httpedge.middleware import EdgeMiddleware, EdgePolicy

__all__ = ["EdgeMiddleware", "EdgePolicy", "HostPolicy"]
