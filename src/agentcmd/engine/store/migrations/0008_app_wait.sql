-- 0008: a run waiting for its app (docs/engine.md, interrupted calls, store/waits.py). Set by the first SDK call
-- of a run that got no answer at all (refused, reset, the app's 503-interrupted), cleared by
-- the next answer. NULL for every run that is not waiting.
-- wait_since: ms epoch, unreachable since then; wait_url: the app URL the engine could not
-- reach; wait_reason: why, in one line (the last interruption).
ALTER TABLE runs ADD COLUMN wait_since INTEGER;
ALTER TABLE runs ADD COLUMN wait_url TEXT;
ALTER TABLE runs ADD COLUMN wait_reason TEXT;
