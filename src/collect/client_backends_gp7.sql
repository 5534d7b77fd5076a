-- Client backends on a GP7 / Cloudberry instance (PostgreSQL 12+ catalog):
-- every client backend takes a max_connections slot, the exporter's own included.
-- Followed by connections.sql or sessions.sql, which aggregate `a`.
WITH a AS (
    SELECT pid, sess_id, state, usename::text AS usename, datname::text AS datname,
           application_name, host(client_addr) AS client_addr, backend_start,
           state_change, query_start
    FROM pg_stat_activity
    WHERE backend_type = 'client backend'
)
