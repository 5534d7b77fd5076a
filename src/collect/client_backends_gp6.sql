-- What holds max_connections slots on a GP6 / Greengage 6 instance (PostgreSQL
-- 9.4 catalog). `a`: client backends. The view inner-joins pg_database and
-- pg_authid, so it hides walsenders and FTS probes. `slot_walsenders`: before
-- PostgreSQL 12 a walsender (the mirror's, a standby coordinator's) takes a
-- max_connections slot too, so it is counted from pg_stat_replication.
-- `wait_reason`: why a waiting backend waits, from waiting_reason (lock,
-- replication, resgroup); a resource queue wait is a lock wait on a lock of
-- type 'resource queue'.
-- Followed by connections.sql or sessions.sql, which aggregate them.
WITH a AS (
    SELECT pid, sess_id, state, usename::text AS usename, datname::text AS datname,
           application_name, host(client_addr) AS client_addr, backend_start,
           state_change, query_start, query,
           CASE
               WHEN NOT waiting THEN NULL
               WHEN waiting_reason = 'resgroup' THEN 'resource_group'
               WHEN waiting_reason = 'lock' AND EXISTS (
                   SELECT 1 FROM pg_locks l
                   WHERE l.pid = s.pid AND NOT l.granted AND l.locktype = 'resource queue')
                   THEN 'resource_queue'
               ELSE coalesce(waiting_reason, 'lock')
           END AS wait_reason
    FROM pg_stat_activity s
),
slot_walsenders AS (
    SELECT count(*) AS n FROM pg_stat_replication
)
