-- 0010: retention (engine/retention.py, store/retention.py). Pruning walks finished runs by
-- when they ended and events by when they were received, oldest first, a small batch at a time;
-- without these indexes each batch would scan the whole table on the event loop.
-- ended_at is only set when a run finishes (store/runs.finish_run_txn).
CREATE INDEX runs_by_ended ON runs (ended_at, run_id) WHERE ended_at IS NOT NULL;
CREATE INDEX events_by_received ON events (received_at, internal_id);
