-- 0001: the engine's whole state. Times are integer milliseconds since the epoch (UTC).

CREATE TABLE apps (
    app_id      TEXT PRIMARY KEY,            -- the SDK's appname
    url         TEXT NOT NULL,               -- serve URL the engine calls
    sdk         TEXT NOT NULL DEFAULT '',
    framework   TEXT NOT NULL DEFAULT '',
    checksum    TEXT NOT NULL DEFAULT '',
    error       TEXT,                        -- last sync error, NULL when healthy
    synced_at   INTEGER NOT NULL
);

CREATE TABLE functions (
    slug        TEXT PRIMARY KEY,            -- composite id "<app>-<fn>" the SDK uses as fnId
    uuid        TEXT NOT NULL UNIQUE,        -- stable id shown as function_id in REST
    app_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    url         TEXT NOT NULL,               -- runtime URL with fnId and stepId=step
    config      TEXT NOT NULL,               -- the FunctionConfig JSON as registered
    archived    INTEGER NOT NULL DEFAULT 0,  -- 1 once a re-sync no longer lists it
    updated_at  INTEGER NOT NULL
);

CREATE TABLE events (
    internal_id TEXT PRIMARY KEY,            -- ULID, what POST /e/ returns
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,               -- the event JSON as the SDK will see it
    user_id     TEXT,                        -- the sender's own id (idempotency key)
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX events_by_name ON events (name, internal_id);
CREATE INDEX events_by_user_id ON events (user_id, received_at);

CREATE TABLE runs (
    run_id       TEXT PRIMARY KEY,           -- ULID
    function_slug TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    event_id     TEXT NOT NULL,              -- internal id of the (first) triggering event
    first_event  TEXT NOT NULL,              -- canonical JSON of events[0] (the request's "event")
    events       TEXT NOT NULL,              -- canonical JSON list of triggering events
    status       TEXT NOT NULL,              -- RunStatus
    output       TEXT,                       -- raw SDK body (JSON text) for Completed/Failed
    error        TEXT,                       -- engine-side error message (internal failures)
    max_attempts INTEGER NOT NULL,
    force_plan   INTEGER NOT NULL DEFAULT 0, -- disable_immediate_execution for the next call
    race         INTEGER NOT NULL DEFAULT 0, -- the open parallel group is in race mode
    pending      TEXT NOT NULL DEFAULT '[]', -- hashed step ids planned/sleeping/waiting
    attempt      INTEGER NOT NULL DEFAULT 0, -- attempt of the last call (for display)
    parent       TEXT,                       -- invoke correlation id when started by step.invoke
    idem_key     TEXT,                       -- "<slug>:<key>" for run idempotency
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    ended_at     INTEGER
);
CREATE INDEX runs_by_event ON runs (event_id);
CREATE INDEX runs_by_function ON runs (function_slug, run_id);
CREATE INDEX runs_by_idem ON runs (idem_key, created_at);

-- The exactly-once memo: one row per (run, hashed step id), never rewritten.
CREATE TABLE steps (
    run_id      TEXT NOT NULL,
    step_id     TEXT NOT NULL,
    seq         INTEGER NOT NULL,            -- position in ctx.stack
    name        TEXT NOT NULL,               -- display name (user's step id)
    op          TEXT NOT NULL,
    memo        TEXT NOT NULL,               -- JSON sent back in "steps"
    status      TEXT NOT NULL,               -- completed | failed
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER NOT NULL,
    PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;

CREATE TABLE queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,               -- QueueKind
    run_id      TEXT,
    step_id     TEXT,                        -- "step" = discovery; a hash = targeted / sleep / wait id
    ready_at    INTEGER NOT NULL,
    lease_until INTEGER,                     -- NULL = free; set while a worker owns it
    attempt     INTEGER NOT NULL DEFAULT 0,
    payload     TEXT NOT NULL DEFAULT '{}',
    dedupe      TEXT UNIQUE                  -- coalesces discoveries, debounce timers, crons
);
CREATE INDEX queue_by_ready ON queue (ready_at) WHERE lease_until IS NULL;
CREATE INDEX queue_by_run ON queue (run_id);

-- Runs waiting on an event: wait_for_event, invoke results, cancel_on.
CREATE TABLE pauses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,               -- wait | invoke | cancel
    run_id      TEXT NOT NULL,
    step_id     TEXT,
    event_name  TEXT NOT NULL,
    expression  TEXT,
    correlation TEXT,
    after_event TEXT NOT NULL,               -- only events with a larger internal id match
    expires_at  INTEGER NOT NULL,
    payload     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX pauses_by_event ON pauses (event_name);
CREATE INDEX pauses_by_run ON pauses (run_id);
CREATE INDEX pauses_by_correlation ON pauses (correlation);

-- Append-only run history (attempts, retries, sleeps, cancels) for the dashboard.
CREATE TABLE history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    type        TEXT NOT NULL,
    step_id     TEXT,
    attempt     INTEGER,
    detail      TEXT
);
CREATE INDEX history_by_run ON history (run_id, id);
