-- 0007: two lanes in the queue. Work of runs that already exist (their next
-- call, a sleep's wake-up, a timeout, a retry, a timer) is leased before the
-- dispatch of newly accepted events, so a flood of events cannot make a
-- sleeping run wake late (store/writes.py lease_due_txn). The expression
-- must match the queries' `(kind = 'event') = ?` exactly for SQLite to use it.
CREATE INDEX queue_by_lane ON queue (kind = 'event', ready_at) WHERE lease_until IS NULL;
