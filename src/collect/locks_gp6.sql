-- Lock waits on a GP6 / Greengage 6 instance (PostgreSQL 9.4 base): no pg_blocking_pids(),
-- so blockers are the granted holders of the same lock object as a waiter;
-- a waiting backend waits since its query_start. The longest wait is taken
-- over the same ungranted locks as the waiters, not over pg_stat_activity's
-- waiting flag: the backend raises that flag only after its lock entry is
-- in pg_locks, so a round in between would serve one waiter waiting 0 s.
-- A statement queued in a resource queue also waits on an ungranted lock, of
-- type 'resource queue', with waiting_reason 'lock': that is queueing, counted
-- as greenplum_backends_waiting{reason="resource_queue"}, so left out here.
-- Columns: collector, item, labels, value.
SELECT 'locks', 'waiters', ARRAY[locktype, mode], count(*)::float8
FROM pg_locks WHERE NOT granted AND pid IS NOT NULL AND locktype <> 'resource queue'
GROUP BY locktype, mode
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
WHERE NOT w.granted AND w.pid IS NOT NULL AND w.locktype <> 'resource queue'
UNION ALL
SELECT 'locks', 'longest_wait', ARRAY[]::text[],
       coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0)::float8
FROM pg_stat_activity
WHERE pid IN (SELECT pid FROM pg_locks
              WHERE NOT granted AND pid IS NOT NULL AND locktype <> 'resource queue')
