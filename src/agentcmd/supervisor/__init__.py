"""Run the engine and the app server as two children of one process.

``agentcmd dev`` / ``agentcmd start`` (``cli/run.py``) resolve settings and
mode, then hand a ``LaunchPlan`` to the ``Supervisor``. The modules, in the
order a start goes through them:

- ``launch``: which command lines and environments the two children get
  (embedded engine, the real ``inngest`` binary, or an external engine).
- ``ports``: refuse a port in use before anything starts, naming the process.
- ``process``: one child: spawn (parent-death signal), prefixed output,
  ``/health`` polling, stop (SIGTERM -> deadline -> SIGKILL).
- ``watchdog``: a tiny separate process that stops the children if the
  supervisor dies without stopping them (the portable parent watch).
- ``logs``: where every line goes: plain, Rich colours, or JSON.
- ``supervisor``: start engine then app, wait for readiness, sync the app and
  check the engine took its functions ("ready"), watch, stop engine then app.
- ``reload``: dev's watch of the workflow files and production's SIGHUP ask
  the app server to reload its workflows in place (no restart).

Nothing here imports the web stack: the supervisor must start fast.
"""
