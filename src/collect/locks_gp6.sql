-- Lock waits on a GP6 / Greengage 6 instance (PostgreSQL 9.4 base): no pg_blocking_pids(),
-- so blockers are the granted holders of the same lock object as a waiter;
-- a waiting backend shows waiting_reason 'lock' and waits since query_start.
-- Columns: collector, item, labels, value.
SELECT 'locks', 'waiters', ARRAY[locktype, mode], count(*)::float8
FROM pg_locks WHERE NOT granted AND pid IS NOT NULL GROUP BY locktype, mode
UNION ALL
SELECT 'locks', 'blockers', ARRAY[]::text[], count(DISTINCT h.virtualtransaction)::float8
FROM pg_locks w
JOIN pg_locks h
  ON h.granted
 AND h.virtualtransaction <> w.virtualtransaction
 AND h.locktype = w.locktype
 AND h.database IS NOT DISTINCT FROM w.database
 AND h.relation IS NOT DISTINCT FROM w.relation
 AND h.page IS NOT DISTINCT FROM w.page
 AND h.tuple IS NOT DISTINCT FROM w.tuple
 AND h.virtualxid IS NOT DISTINCT FROM w.virtualxid
 AND h.transactionid IS NOT DISTINCT FROM w.transactionid
 AND h.classid IS NOT DISTINCT FROM w.classid
 AND h.objid IS NOT DISTINCT FROM w.objid
 AND h.objsubid IS NOT DISTINCT FROM w.objsubid
WHERE NOT w.granted AND w.pid IS NOT NULL
UNION ALL
SELECT 'locks', 'longest_wait', ARRAY[]::text[],
       coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0)::float8
FROM pg_stat_activity WHERE waiting AND waiting_reason = 'lock'
