"""What the two web UIs share: the engine dashboard (``engine/dashboard``, :8288) and the workflow views (``ui``).

* ``render.py``: the Jinja environment and its filters, page fingerprints (``version_of``), security headers,
  and ``wants_json`` (a page or its JSON twin).
* ``site.py``: ``Site``, one UI's chrome: renders a page, its JSON twin or an error; how handlers find it.
* ``forms.py``: reading a posted form, safe ``next`` targets.
* ``login.py``: the ``/login`` and ``/logout`` handlers (the flow itself is ``agentcmd.webauth.login``).
* ``static.py``: the stylesheet and live-update script (``static/``) both UIs serve.
* ``templates/``: ``layout.html`` (the frame of every page), ``login.html``, ``error.html``, ``macros.html``.

Nothing here imports the engine or the app server: each UI brings its own pages and data.
"""
