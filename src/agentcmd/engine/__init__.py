"""The embedded Inngest-compatible engine: one event's path through the modules.

1. ``api/events.py`` -> ``commands.Commands.accept_events``: ``POST /e/{key}``
   validates and stores events with a dispatch row each (one commit).
2. ``ingest.Dispatcher`` (on the worker): ``triggers`` (name + CEL) and ``flow/``
   (idempotency, singleton, debounce, batch) -> ``store.runs.create_runs_txn``:
   run row + first queue row; pauses an event satisfies are resolved here too.
3. ``worker`` + ``kinds``: rows with ``ready_at``/``lease_until``/``attempt``;
   the worker leases due rows with bounded concurrency and routes each
   through ``kinds.HANDLERS``, one handler per queue kind.
4. ``executor``: one leased row -> ``driver`` call -> ``decide`` -> one commit of
   memo + next rows + ack (``store.runs.apply_outcome_txn``).
5. ``driver`` (+ ``http1``, its keep-alive HTTP/1.1 client) + ``protocol`` + ``signing``:
   the HTTP call, the wire format, HMAC.
6. ``store``: SQLite (memory or WAL file) behind Protocols; the memo is
   ``PRIMARY KEY (run_id, step_id)``; ``history`` rows are written in the same
   transactions as the state they describe.
7. ``store.queries``: the one read path for ``api/rest.py``, ``api/graphql.py`` and the dashboard.

``apps`` syncs apps (PUT to the app / ``POST /fn/register``), ``discovery`` finds
them on local ports in dev; ``app`` wires it all into a Starlette app (the
``dashboard`` is mounted lazily at ``/``); ``serve`` runs it under uvicorn;
``debug_triggers`` holds the crash-test fault points. The HTTP layers (``api/``,
``dashboard``) only talk to ``commands.Commands``, the engine's command facade. docs/engine.md has the
durability design and the benchmark.
"""
