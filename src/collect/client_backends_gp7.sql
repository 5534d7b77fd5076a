-- What holds max_connections slots on a GP7 / Greengage 7 / Cloudberry instance
-- (PostgreSQL 12+ catalog). `a`: client backends, the exporter's own included.
-- `slot_walsenders`: none, walsenders have their own slots (max_wal_senders)
-- since PostgreSQL 12.
-- Followed by connections.sql or sessions.sql, which aggregate them.
WITH a AS (
    SELECT pid, sess_id, state, usename::text AS usename, datname::text AS datname,
           application_name, host(client_addr) AS client_addr, backend_start,
           state_change, query_start, query
    FROM pg_stat_activity
    WHERE backend_type = 'client backend'
),
slot_walsenders AS (
    SELECT NULL::bigint AS n
)
