-- 0011: GET /v1/runs?ended_after= (the app server's notifications poll it every few seconds) reads
-- one index range of the runs that ended after a time, not the whole runs table.
CREATE INDEX runs_by_ended_at ON runs (ended_at) WHERE ended_at IS NOT NULL;
