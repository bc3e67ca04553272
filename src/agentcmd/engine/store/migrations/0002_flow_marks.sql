-- 0002: flow-control marks. One row per run admitted under a rate-limit or
-- throttle key, at the time it was (or will be) started; old rows are pruned.
CREATE TABLE flow_marks (
    key TEXT NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX flow_marks_by_key ON flow_marks (key, at);
