-- Client backends on a GP5/GP6 instance (PostgreSQL 8.3/9.4 catalog): the view
-- inner-joins pg_database and pg_authid, so it lists exactly the sessions that
-- hold max_connections slots (walsenders and FTS probes are hidden).
-- Followed by connections.sql or sessions.sql, which aggregate `a`.
WITH a AS (
    SELECT pid, sess_id, state, usename::text AS usename, datname::text AS datname,
           application_name, host(client_addr) AS client_addr, backend_start,
           state_change, query_start
    FROM pg_stat_activity
)
