-- 0006: replayed runs (flow/replay.py) name the run they replay, so the
-- dashboard can badge them and link both ways. NULL for every other run.
ALTER TABLE runs ADD COLUMN replay_of TEXT;
CREATE INDEX runs_by_replay_of ON runs (replay_of) WHERE replay_of IS NOT NULL;
-- The dashboard lists a function's recent skips (rate limit, pause, singleton) newest first.
CREATE INDEX flow_skips_by_function ON flow_skips (function_slug, id);
