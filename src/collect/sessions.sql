-- Backends by the coordinator session they serve, joined across instances by
-- sessions.rs to attribute segment slots to coordinator sessions, users and
-- applications. Reads the client backends `a` of client_backends_<family>.sql.
-- Columns: collector, item, labels, value.
--
-- Query executors (and, on the coordinator, dispatchers) by session id;
-- the exporter's own session is told apart by its application_name.
SELECT 'sessions', 'by_session', ARRAY[sess_id::text], count(*)::float8
FROM a
WHERE sess_id > 0 AND application_name IS DISTINCT FROM 'greenplum_segment_exporter'
GROUP BY sess_id
UNION ALL
-- Local sessions by kind and by their own application_name (who holds a
-- segment's slots: lowest_headroom.rs).
SELECT 'sessions', 'local', ARRAY[kind, application_name], count(*)::float8
FROM (
    SELECT CASE WHEN application_name = 'greenplum_segment_exporter' THEN 'exporter'
                ELSE 'utility' END AS kind,
           coalesce(application_name, '') AS application_name
    FROM a
    WHERE sess_id <= 0 OR application_name = 'greenplum_segment_exporter'
) l
GROUP BY kind, application_name
UNION ALL
-- On the coordinator only: who each distributed session is. Value: its age.
-- $2: characters of query text to read (for incident records); 0 reads none.
SELECT 'sessions', 'coordinator_session',
       ARRAY[sess_id::text, coalesce(usename, ''), coalesce(application_name, ''),
             coalesce(client_addr, ''), coalesce(state, ''),
             CASE WHEN $2 > 0 THEN coalesce(left(query, $2), '') ELSE '' END],
       extract(epoch FROM clock_timestamp() - backend_start)::float8
FROM a
WHERE sess_id > 0 AND application_name IS DISTINCT FROM 'greenplum_segment_exporter'
  AND current_setting('gp_contentid')::int < 0
UNION ALL
-- The limits the configuration-risk figure is made of.
SELECT 'sessions', v.item, ARRAY[]::text[], v.value
FROM (VALUES
    ('ordinary_slots', current_setting('max_connections')::float8
                       - current_setting('superuser_reserved_connections')::float8),
    -- Greenplum's default when the server does not say. Read from pg_settings:
    -- GP6 has only current_setting(text), which fails on a missing setting.
    ('cached_segworkers_threshold',
     coalesce((SELECT setting FROM pg_settings WHERE name = 'gp_cached_segworkers_threshold'),
              '5')::float8)
) v(item, value)
