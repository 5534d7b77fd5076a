-- The instance's walsender to its mirror (on the coordinator: to its standby),
-- from pg_stat_replication with the PostgreSQL 9.4 names of GP6 / Greengage 6
-- (`*_location`, pg_current_xlog_location(), pg_xlog_location_diff()).
-- One walsender counts: the mirror's (application_name gp_walreceiver) first,
-- then a streaming one (false sorts first); a gprecoverseg's pg_basebackup shows as `backup`.
-- Without one (the left join gives NULLs): state and sync_state `none`, no
-- lag rows (the diff is strict: NULL, filtered out).
-- An instance in recovery (a mirror being promoted, a standby) has no current
-- WAL position and pg_current_xlog_location() errors there: CASE does not call
-- it, and there are no lag rows.
-- lag_bytes: between the current WAL position and what the mirror was sent,
-- has flushed and has replayed; 9.4 measures no lag times.
-- Columns: collector, item, labels, value.
WITH w AS (
    SELECT state, sync_state, sent_location s, flush_location f, replay_location r,
           CASE WHEN NOT pg_is_in_recovery() THEN pg_current_xlog_location() END c
    FROM pg_stat_replication
    ORDER BY application_name <> 'gp_walreceiver', state <> 'streaming', pid
    LIMIT 1
)
SELECT 'replication', i, ARRAY[l], x::float8
FROM (SELECT 1) o LEFT JOIN w ON true,
LATERAL (VALUES ('state', coalesce(state, 'none'), 1),
    ('sync_state', coalesce(sync_state, 'none'), 1),
    ('lag_bytes', 'sent', pg_xlog_location_diff(c, s)),
    ('lag_bytes', 'flush', pg_xlog_location_diff(c, f)),
    ('lag_bytes', 'replay', pg_xlog_location_diff(c, r))) v(i, l, x)
WHERE x IS NOT NULL
