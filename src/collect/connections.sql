-- Aggregates the slot holders (`a`, `slot_walsenders`) of client_backends_<family>.sql.
-- Ages use clock_timestamp(), not now(): now() is when the exporter's own
-- transaction began, which can be before a backend's last state change seen
-- in the activity snapshot, and would give negative ages.
-- Columns: collector, item, labels, value.
SELECT 'connections', 'state', ARRAY[coalesce(state, 'unknown')], count(*)::float8
FROM a GROUP BY state
UNION ALL
SELECT 'connections', v.item, ARRAY[]::text[], v.value
FROM (
    SELECT max(extract(epoch FROM clock_timestamp() - state_change))
               FILTER (WHERE state = 'idle in transaction') AS idle_in_tx,
           max(extract(epoch FROM clock_timestamp() - query_start))
               FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()) AS active
    FROM a
) s,
LATERAL (VALUES
    ('max_connections', current_setting('max_connections')::float8),
    ('superuser_reserved_connections', current_setting('superuser_reserved_connections')::float8),
    ('oldest_idle_in_transaction', coalesce(s.idle_in_tx, 0)::float8),
    ('oldest_active', coalesce(s.active, 0)::float8)
) v(item, value)
UNION ALL
SELECT 'connections', 'waiting', ARRAY[wait_reason], count(*)::float8
FROM a WHERE wait_reason IS NOT NULL GROUP BY wait_reason
UNION ALL
SELECT 'connections', 'walsenders', ARRAY[]::text[], n::float8
FROM slot_walsenders WHERE n IS NOT NULL
UNION ALL
SELECT 'connections', 'by_user', ARRAY[coalesce(usename, '')], count(*)::float8
FROM a GROUP BY usename
UNION ALL
SELECT 'connections', 'by_database', ARRAY[coalesce(datname, '')], count(*)::float8
FROM a GROUP BY datname
UNION ALL
SELECT 'connections', 'by_application', ARRAY[coalesce(application_name, '')], count(*)::float8
FROM a GROUP BY application_name
