-- 0004: paused functions (flow/pause.py). While a row exists, events do not
-- start the function (recorded in flow_skips) and its runs' calls are parked
-- in flow_waiting under the key "paused:<slug>" until it is unpaused.
CREATE TABLE flow_paused (
    slug      TEXT PRIMARY KEY,
    paused_at INTEGER NOT NULL
);
