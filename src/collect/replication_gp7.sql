-- The instance's walsender to its mirror (on the coordinator: to its standby),
-- from pg_stat_replication with the PostgreSQL 12+ names of GP7 / Greengage 7 /
-- Cloudberry (`*_lsn`, pg_current_wal_lsn(), pg_wal_lsn_diff()).
-- One walsender counts: the mirror's (application_name gp_walreceiver) first,
-- then a streaming one (false sorts first); a gprecoverseg's pg_basebackup shows as `backup`.
-- Without one (the left join gives NULLs): state and sync_state `none`, no
-- lag rows (the diff is strict: NULL, filtered out).
-- An instance in recovery (a mirror being promoted, a standby) has no current
-- WAL position and pg_current_wal_lsn() errors there: CASE does not call it,
-- and there are no lag rows.
-- lag_bytes: between the current WAL position and what the mirror was sent,
-- has flushed and has replayed. lag_seconds: write_lag, flush_lag,
-- replay_lag; the server shows NULL once the mirror has caught up and no WAL
-- comes, which is 0 here when that position is the current one (else no row).
-- Columns: collector, item, labels, value.
WITH w AS (
    SELECT state, sync_state, sent_lsn s, write_lsn wr, flush_lsn f, replay_lsn r,
           write_lag, flush_lag, replay_lag,
           CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn() END c
    FROM pg_stat_replication
    ORDER BY application_name <> 'gp_walreceiver', state <> 'streaming', pid
    LIMIT 1
)
SELECT 'replication', i, ARRAY[l], x::float8
FROM (SELECT 1) o LEFT JOIN w ON true,
LATERAL (VALUES ('state', coalesce(state, 'none'), 1),
    ('sync_state', coalesce(sync_state, 'none'), 1),
    ('lag_bytes', 'sent', pg_wal_lsn_diff(c, s)),
    ('lag_bytes', 'flush', pg_wal_lsn_diff(c, f)),
    ('lag_bytes', 'replay', pg_wal_lsn_diff(c, r)),
    ('lag_seconds', 'write', CASE WHEN wr = c THEN 0 ELSE extract(epoch FROM write_lag) END),
    ('lag_seconds', 'flush', CASE WHEN f = c THEN 0 ELSE extract(epoch FROM flush_lag) END),
    ('lag_seconds', 'replay', CASE WHEN r = c THEN 0 ELSE extract(epoch FROM replay_lag) END)
) v(i, l, x)
WHERE x IS NOT NULL
