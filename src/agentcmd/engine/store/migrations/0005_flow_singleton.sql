-- 0005: singleton runs per key (flow/singleton.py). One row per run started
-- under `singleton`; rows of runs that ended are dropped when the key is next checked.
CREATE TABLE flow_singleton (
    run_id TEXT PRIMARY KEY,
    key    TEXT NOT NULL                 -- "<slug>:<evaluated singleton.key>"
);
CREATE INDEX flow_singleton_by_key ON flow_singleton (key);
