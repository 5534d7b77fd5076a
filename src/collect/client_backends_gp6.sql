-- What holds max_connections slots on a GP6 / Greengage 6 instance (PostgreSQL
-- 9.4 catalog). `a`: client backends. The view inner-joins pg_database and
-- pg_authid, so it hides walsenders and FTS probes. `slot_walsenders`: before
-- PostgreSQL 12 a walsender (the mirror's, a standby coordinator's) takes a
-- max_connections slot too, so it is counted from pg_stat_replication.
-- Followed by connections.sql or sessions.sql, which aggregate them.
WITH a AS (
    SELECT pid, sess_id, state, usename::text AS usename, datname::text AS datname,
           application_name, host(client_addr) AS client_addr, backend_start,
           state_change, query_start, query
    FROM pg_stat_activity
),
slot_walsenders AS (
    SELECT count(*) AS n FROM pg_stat_replication
)
