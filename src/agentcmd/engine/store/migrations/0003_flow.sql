-- 0003: flow control state (flow/concurrency.py, flow/__init__.py).
--
-- flow_waiting: step calls parked because a concurrency key was full. The
-- queue row stays in `queue` (so cancelling the run deletes it) with a far
-- `ready_at`; this row says which key it waits on and in what order it gets
-- the next free slot (`score`: the run's creation time minus its priority
-- shift, so older and prioritised runs go first, as in Inngest's queue).
CREATE TABLE flow_waiting (
    item_id     INTEGER PRIMARY KEY,         -- queue.id of the parked row
    key         TEXT NOT NULL,               -- the full concurrency key it waits on
    lim         INTEGER NOT NULL,            -- that key's limit (to resume after a restart)
    score       INTEGER NOT NULL,            -- lower goes first
    ready_at    INTEGER NOT NULL             -- the row's ready_at before it was parked
);
CREATE INDEX flow_waiting_by_key ON flow_waiting (key, score, item_id);

-- A queue row that goes away (acked, run cancelled) stops waiting.
CREATE TRIGGER flow_waiting_gc AFTER DELETE ON queue BEGIN DELETE FROM flow_waiting WHERE item_id = OLD.id; END;

-- Events a rate limit dropped: no run exists for them, so this is where the skip is recorded.
CREATE TABLE flow_skips (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    function_slug TEXT NOT NULL,
    event_id      TEXT NOT NULL,             -- internal id of the dropped event
    reason        TEXT NOT NULL,             -- rate_limit
    at            INTEGER NOT NULL
);
CREATE INDEX flow_skips_by_event ON flow_skips (event_id);
