-- What holds max_connections slots on a GP7 / Greengage 7 / Cloudberry instance
-- (PostgreSQL 12+ catalog). `a`: client backends, the exporter's own included.
-- `slot_walsenders`: none, walsenders have their own slots (max_wal_senders)
-- since PostgreSQL 12.
-- `wait_reason`: what an active backend waits for, from wait_event_type
-- (Lock, ResourceGroup, ResourceQueue, Replication, IPC, IO, LWLock, ...); idle
-- backends waiting for their client do not count.
-- Followed by connections.sql or sessions.sql, which aggregate them.
WITH a AS (
    SELECT pid, sess_id, state, usename::text AS usename, datname::text AS datname,
           application_name, host(client_addr) AS client_addr, backend_start,
           state_change, query_start, query,
           CASE
               WHEN state IS DISTINCT FROM 'active' OR wait_event_type IS NULL THEN NULL
               WHEN wait_event_type = 'ResourceGroup' THEN 'resource_group'
               WHEN wait_event_type = 'ResourceQueue' THEN 'resource_queue'
               WHEN wait_event_type = 'BufferPin' THEN 'buffer_pin'
               ELSE lower(wait_event_type)
           END AS wait_reason
    FROM pg_stat_activity
    WHERE backend_type = 'client backend'
),
slot_walsenders AS (
    SELECT NULL::bigint AS n
)
