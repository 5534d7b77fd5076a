-- Lock waits on a GP7 / Cloudberry instance: pg_blocking_pids() exists there,
-- and a waiting backend waits since its state_change. The longest wait is
-- taken over the same ungranted locks as the waiters, not over wait_event_type:
-- the backend sets that only after its lock entry is in pg_locks.
-- A statement queued in a resource queue also waits on an ungranted lock, of
-- type 'resource queue' (wait_event_type 'ResourceQueue', and
-- pg_blocking_pids() names the statements running in the queue): that is
-- queueing, counted as greenplum_backends_waiting{reason="resource_queue"},
-- so left out here.
-- Columns: collector, item, labels, value.
SELECT 'locks', 'waiters', ARRAY[locktype, mode], count(*)::float8
FROM pg_locks WHERE NOT granted AND pid IS NOT NULL AND locktype <> 'resource queue'
GROUP BY locktype, mode
UNION ALL
SELECT 'locks', 'blockers', ARRAY[]::text[], count(DISTINCT b)::float8
FROM pg_locks l, LATERAL unnest(pg_blocking_pids(l.pid)) b
WHERE NOT l.granted AND l.pid IS NOT NULL AND l.locktype <> 'resource queue'
UNION ALL
SELECT 'locks', 'longest_wait', ARRAY[]::text[],
       coalesce(max(extract(epoch FROM clock_timestamp() - state_change)), 0)::float8
FROM pg_stat_activity
WHERE pid IN (SELECT pid FROM pg_locks
              WHERE NOT granted AND pid IS NOT NULL AND locktype <> 'resource queue')
