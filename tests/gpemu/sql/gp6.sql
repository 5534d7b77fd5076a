SET allow_system_table_mods = on;
-- gpemu: give this database the Greenplum 6 catalog shape (see docs/emulation.md).
-- Run once per database (template1 first, then postgres) as a superuser, on a
-- server started with gpemu.family = gp6 and gpemu.so preloaded.  Plain SQL
-- (no psql meta-commands): it can be sent as one simple-query batch.

BEGIN;

CREATE OR REPLACE FUNCTION pg_catalog.gpemu_sess_id(integer) RETURNS integer
    LANGUAGE c STRICT AS 'gpemu', 'gpemu_sess_id';
CREATE OR REPLACE FUNCTION pg_catalog.gpemu_is_writer(integer) RETURNS boolean
    LANGUAGE c STRICT AS 'gpemu', 'gpemu_is_writer';
CREATE OR REPLACE FUNCTION pg_catalog.gpemu_wait_reason(integer) RETURNS text
    LANGUAGE c STRICT AS 'gpemu', 'gpemu_wait_reason';
CREATE OR REPLACE FUNCTION pg_catalog.gpemu_free_slots() RETURNS integer
    LANGUAGE c AS 'gpemu', 'gpemu_free_slots';
CREATE OR REPLACE FUNCTION pg_catalog.gpemu_setting_exists(text) RETURNS boolean
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'gpemu', 'gpemu_setting_exists';

-- Greenplum 6's (PostgreSQL 9.4's) names of the WAL position functions that
-- PostgreSQL 10 renamed (xlog -> wal, location -> lsn): PostgreSQL 15 has only
-- the new names, which GP6 lacks.  Monitoring tools call the old ones on a 9.4
-- server (postgres_exporter, which reads the version from version(), in its
-- replication queries).  The same built-in code under the 9.4 name.
CREATE OR REPLACE FUNCTION pg_catalog.pg_current_xlog_location() RETURNS pg_lsn
    LANGUAGE internal VOLATILE STRICT AS 'pg_current_wal_lsn';
CREATE OR REPLACE FUNCTION pg_catalog.pg_current_xlog_insert_location() RETURNS pg_lsn
    LANGUAGE internal VOLATILE STRICT AS 'pg_current_wal_insert_lsn';
CREATE OR REPLACE FUNCTION pg_catalog.pg_last_xlog_receive_location() RETURNS pg_lsn
    LANGUAGE internal VOLATILE STRICT AS 'pg_last_wal_receive_lsn';
CREATE OR REPLACE FUNCTION pg_catalog.pg_last_xlog_replay_location() RETURNS pg_lsn
    LANGUAGE internal VOLATILE STRICT AS 'pg_last_wal_replay_lsn';
CREATE OR REPLACE FUNCTION pg_catalog.pg_xlog_location_diff(pg_lsn, pg_lsn) RETURNS numeric
    LANGUAGE internal IMMUTABLE STRICT AS 'pg_wal_lsn_diff';
CREATE OR REPLACE FUNCTION pg_catalog.pg_xlogfile_name(pg_lsn) RETURNS text
    LANGUAGE internal IMMUTABLE STRICT AS 'pg_walfile_name';
CREATE OR REPLACE FUNCTION pg_catalog.pg_xlogfile_name_offset(lsn pg_lsn,
        OUT file_name text, OUT file_offset integer) RETURNS record
    LANGUAGE internal IMMUTABLE STRICT AS 'pg_walfile_name_offset';
CREATE OR REPLACE FUNCTION pg_catalog.pg_is_xlog_replay_paused() RETURNS boolean
    LANGUAGE internal VOLATILE STRICT AS 'pg_is_wal_replay_paused';
-- Superuser only, as on 9.4 (PostgreSQL 15 revokes them from PUBLIC likewise).
CREATE OR REPLACE FUNCTION pg_catalog.pg_xlog_replay_pause() RETURNS void
    LANGUAGE internal VOLATILE STRICT AS 'pg_wal_replay_pause';
CREATE OR REPLACE FUNCTION pg_catalog.pg_xlog_replay_resume() RETURNS void
    LANGUAGE internal VOLATILE STRICT AS 'pg_wal_replay_resume';
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_xlog_replay_pause() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_xlog_replay_resume() FROM PUBLIC;

-- The product and release; a client login reports server_version 9.4.26 (gpemu.c).
CREATE OR REPLACE FUNCTION pg_catalog.version() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$SELECT 'PostgreSQL 9.4.26 (Greenplum Database 6.24.3 build commit:emulated) on x86_64-unknown-linux-gnu, compiled by gcc, 64-bit (emulated by gpemu on PostgreSQL 15)'::text$$;

-- Greenplum 6.24.3 column set and order.  Inner joins as in GP6: backends
-- without a database or role (background workers, walsenders, the autovacuum
-- launcher) are not shown.  A wait declared with gpemu.wait_reason (a test
-- device) shows while the backend runs a statement: waiting_reason resgroup,
-- replication, or lock for a resource queue (pg_locks adds its lock).
DROP VIEW pg_catalog.pg_stat_activity;
CREATE VIEW pg_catalog.pg_stat_activity AS
    SELECT
            S.datid AS datid,
            D.datname AS datname,
            S.pid,
            COALESCE(pg_catalog.gpemu_sess_id(S.pid), -1) AS sess_id,
            S.usesysid,
            U.rolname AS usename,
            S.application_name,
            S.client_addr,
            S.client_hostname,
            S.client_port,
            S.backend_start,
            S.xact_start,
            S.query_start,
            S.state_change,
            COALESCE(W.reason IS NOT NULL OR S.wait_event_type = 'Lock', false) AS waiting,
            S.state,
            S.backend_xid,
            S.backend_xmin,
            S.query,
            CASE
                WHEN W.reason = 'resource_group' THEN 'resgroup'::text
                WHEN W.reason = 'replication' THEN 'replication'::text
                WHEN W.reason = 'resource_queue' OR S.wait_event_type = 'Lock' THEN 'lock'::text
            END AS waiting_reason,
            0::oid AS rsgid,
            'unknown'::text AS rsgname,
            NULL::interval AS rsgqueueduration
    FROM pg_catalog.pg_database D,
        pg_catalog.pg_stat_get_activity(NULL) AS S
            CROSS JOIN LATERAL (SELECT CASE WHEN S.state = 'active'
                                       THEN pg_catalog.gpemu_wait_reason(S.pid) END AS reason) AS W,
        pg_catalog.pg_authid U
    WHERE S.datid = D.oid AND
            S.usesysid = U.oid;
GRANT SELECT ON pg_catalog.pg_stat_activity TO PUBLIC;

-- Greenplum 6 pg_locks: PostgreSQL 9.4 columns (no waitstart) plus the MPP ones.
DROP VIEW pg_catalog.pg_locks;
CREATE VIEW pg_catalog.pg_locks AS
    SELECT
            L.locktype,
            L.database,
            L.relation,
            L.page,
            L.tuple,
            L.virtualxid,
            L.transactionid,
            L.classid,
            L.objid,
            L.objsubid,
            L.virtualtransaction,
            L.pid,
            L.mode,
            L.granted,
            L.fastpath,
            COALESCE(pg_catalog.gpemu_sess_id(L.pid), -1) AS mppsessionid,
            COALESCE(pg_catalog.gpemu_is_writer(L.pid), false) AS mppiswriter,
            pg_catalog.current_setting('gp_contentid')::integer AS gp_segment_id
    FROM pg_catalog.pg_lock_status() AS L
UNION ALL
-- The lock a session queued in a resource queue waits for, declared with
-- gpemu.wait_reason = resource_queue (a test device) and shown while it runs a
-- statement: Greenplum's lock type on the default queue pg_default (OID 6055),
-- ungranted, in the backend's own virtual transaction.
SELECT
            'resource queue'::text,
            S.datid,
            NULL::oid,
            NULL::integer,
            NULL::smallint,
            NULL::text,
            NULL::xid,
            NULL::oid,
            '6055'::oid,
            NULL::smallint,
            V.virtualtransaction,
            S.pid,
            'ExclusiveLock'::text,
            false,
            false,
            pg_catalog.gpemu_sess_id(S.pid),
            pg_catalog.gpemu_is_writer(S.pid),
            pg_catalog.current_setting('gp_contentid')::integer
    FROM pg_catalog.pg_stat_get_activity(NULL) AS S
        LEFT JOIN pg_catalog.pg_lock_status() AS V
            ON (V.pid = S.pid AND V.locktype = 'virtualxid' AND V.virtualxid = V.virtualtransaction)
    WHERE S.state = 'active' AND pg_catalog.gpemu_wait_reason(S.pid) = 'resource_queue';
GRANT SELECT ON pg_catalog.pg_locks TO PUBLIC;

-- Greenplum 6 pg_stat_replication: PostgreSQL 9.4's columns, as the 6.24.3
-- server's system_views.sql defines them (`*_location`, no lag times, no
-- reply_time), over PostgreSQL 15's walsender function.
DROP VIEW pg_catalog.pg_stat_replication;
CREATE VIEW pg_catalog.pg_stat_replication AS
    SELECT S.pid, S.usesysid, U.rolname AS usename, S.application_name, S.client_addr,
           S.client_hostname, S.client_port, S.backend_start, S.backend_xmin, W.state,
           W.sent_lsn AS sent_location, W.write_lsn AS write_location,
           W.flush_lsn AS flush_location, W.replay_lsn AS replay_location,
           W.sync_priority, W.sync_state
    FROM pg_catalog.pg_stat_get_activity(NULL) AS S, pg_catalog.pg_authid U,
         pg_catalog.pg_stat_get_wal_senders() AS W
    WHERE S.usesysid = U.oid AND S.pid = W.pid;
GRANT SELECT ON pg_catalog.pg_stat_replication TO PUBLIC;

-- Greenplum 6 pg_settings: PostgreSQL 9.4 columns (no pending_restart), and only
-- the settings Greenplum 6 has (catalog/gp6_settings.txt) or custom ones with a
-- dot.  Not those the real server hides from it (max_wal_senders on
-- Greenplum 6).  The rules are PostgreSQL's own.
DROP VIEW pg_catalog.pg_settings;
CREATE VIEW pg_catalog.pg_settings AS
    SELECT A.name, A.setting, A.unit, A.category, A.short_desc, A.extra_desc,
           A.context, A.vartype, A.source, A.min_val, A.max_val, A.enumvals,
           A.boot_val, A.reset_val, A.sourcefile, A.sourceline
    FROM pg_catalog.pg_show_all_settings() AS A
    WHERE pg_catalog.gpemu_setting_exists(A.name)
      -- What a real Greenplum 6.24.3 server keeps out of pg_settings (GUC_NO_SHOW_ALL)
      -- and PostgreSQL 15 lists: SHOW and current_setting() still answer them.
      AND A.name NOT IN (
          'allow_system_table_mods', 'archive_timeout', 'autovacuum',
          'autovacuum_analyze_scale_factor', 'autovacuum_analyze_threshold',
          'autovacuum_freeze_max_age', 'autovacuum_naptime', 'autovacuum_vacuum_cost_delay',
          'autovacuum_vacuum_cost_limit', 'autovacuum_vacuum_scale_factor',
          'autovacuum_vacuum_threshold', 'bgwriter_delay', 'bgwriter_lru_maxpages',
          'bgwriter_lru_multiplier', 'checkpoint_warning', 'commit_delay', 'commit_siblings',
          'config_file', 'constraint_exclusion', 'external_pid_file', 'fsync',
          'full_page_writes', 'geqo', 'geqo_effort', 'geqo_generations', 'geqo_pool_size',
          'geqo_selection_bias', 'geqo_threshold', 'hba_file', 'hot_standby',
          'hot_standby_feedback', 'huge_pages', 'ident_file', 'ignore_system_indexes',
          'lo_compat_privileges', 'log_destination', 'log_directory', 'log_file_mode',
          'log_filename', 'log_line_prefix', 'max_replication_slots',
          'max_standby_archive_delay', 'max_standby_streaming_delay', 'max_wal_senders',
          'post_auth_delay', 'pre_auth_delay', 'restart_after_crash',
          'session_replication_role', 'synchronous_commit', 'synchronous_standby_names',
          'syslog_facility', 'syslog_ident', 'trace_notify', 'trace_sort',
          'transaction_deferrable', 'vacuum_defer_cleanup_age', 'wal_level', 'wal_log_hints',
          'wal_sync_method', 'zero_damaged_pages');
CREATE RULE pg_settings_u AS
    ON UPDATE TO pg_catalog.pg_settings
    WHERE new.name = old.name DO
    SELECT pg_catalog.set_config(old.name, new.setting, 'f');
CREATE RULE pg_settings_n AS
    ON UPDATE TO pg_catalog.pg_settings
    DO INSTEAD NOTHING;
GRANT SELECT, UPDATE ON pg_catalog.pg_settings TO PUBLIC;

COMMIT;
