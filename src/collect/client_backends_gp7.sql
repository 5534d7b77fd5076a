-- Client backends on a GP7 / Cloudberry instance (PostgreSQL 12+ catalog):
-- every client backend takes a max_connections slot, the exporter's own included.
-- Followed by connections.sql, which aggregates `a`.
WITH a AS (
    SELECT pid, sess_id, state, usename::text AS usename, datname::text AS datname,
           application_name, state_change, query_start
    FROM pg_stat_activity
    WHERE backend_type = 'client backend'
)
