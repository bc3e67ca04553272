"""What tests in several folders share, defined once (tests/README.md lists it).

``processes``: free ports, a clean child environment, ``Child`` and
``Spawned`` subprocesses stopped by PID, ``run_cli``, ``pid_alive``.
``servers``: ``LiveServer``, an ASGI app under uvicorn on an ephemeral
loopback port. ``engine``: real ``agentcmd engine dev|start`` subprocesses
and the official SDK served against them. ``appserver``: the app server
under an auth policy next to a real dev engine. ``browser``: a real
Chromium. ``keys``: the test keys and the app API's bearer. ``doctables``:
the docs tables tests hold against the code. The fixtures themselves are
imported by ``tests/conftest.py`` (everywhere) or by the conftest of the
folders that use them.
"""
