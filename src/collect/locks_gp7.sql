-- Lock waits on a GP7 / Cloudberry instance: pg_blocking_pids() exists there,
-- and a waiting backend shows wait_event_type 'Lock' since its state_change.
-- Columns: collector, item, labels, value.
SELECT 'locks', 'waiters', ARRAY[locktype, mode], count(*)::float8
FROM pg_locks WHERE NOT granted AND pid IS NOT NULL GROUP BY locktype, mode
UNION ALL
SELECT 'locks', 'blockers', ARRAY[]::text[], count(DISTINCT b)::float8
FROM pg_locks l, LATERAL unnest(pg_blocking_pids(l.pid)) b
WHERE NOT l.granted AND l.pid IS NOT NULL
UNION ALL
SELECT 'locks', 'longest_wait', ARRAY[]::text[],
       coalesce(max(extract(epoch FROM clock_timestamp() - state_change)), 0)::float8
FROM pg_stat_activity WHERE wait_event_type = 'Lock'
