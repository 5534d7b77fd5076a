SET allow_system_table_mods = on;
-- gpemu: give this database the Greenplum 7 catalog shape (see docs/emulation.md).
-- Run once per database (template1 first, then postgres) as a superuser, on a
-- server started with gpemu.family = gp7 and gpemu.so preloaded.  Plain SQL
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

-- The product and release; a client login reports server_version 12.12 (gpemu.c).
CREATE OR REPLACE FUNCTION pg_catalog.version() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$SELECT 'PostgreSQL 12.12 (Greenplum Database 7.0.0 build commit:emulated) on x86_64-pc-linux-gnu, compiled by gcc, 64-bit (emulated by gpemu on PostgreSQL 15)'::text$$;

-- Greenplum 7 column set and order: PostgreSQL's view (left joins, so every
-- backend type shows) without leader_pid/query_id, plus sess_id and the
-- resource group columns.  A wait declared with gpemu.wait_reason (a test
-- device) shows while the backend runs a statement, in place of PostgreSQL's
-- own: wait_event_type and wait_event ResourceGroup, ResourceQueue (pg_locks
-- adds its lock) or Replication, as Greenplum 7 names them.
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
            COALESCE(W.event, S.wait_event_type) AS wait_event_type,
            COALESCE(W.event, S.wait_event) AS wait_event,
            S.state,
            S.backend_xid,
            S.backend_xmin,
            S.query,
            S.backend_type,
            0::oid AS rsgid,
            'unknown'::text AS rsgname
    FROM pg_catalog.pg_stat_get_activity(NULL) AS S
        CROSS JOIN LATERAL (SELECT CASE WHEN S.state = 'active'
                                   THEN CASE pg_catalog.gpemu_wait_reason(S.pid)
                                            WHEN 'resource_group' THEN 'ResourceGroup'::text
                                            WHEN 'resource_queue' THEN 'ResourceQueue'::text
                                            WHEN 'replication' THEN 'Replication'::text
                                        END
                                   END AS event) AS W
        LEFT JOIN pg_catalog.pg_database AS D ON (S.datid = D.oid)
        LEFT JOIN pg_catalog.pg_authid AS U ON (S.usesysid = U.oid);
GRANT SELECT ON pg_catalog.pg_stat_activity TO PUBLIC;

-- Greenplum 7 pg_locks: PostgreSQL 12 columns (no waitstart) plus the MPP ones.
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

-- Greenplum 7 pg_settings: PostgreSQL 12 has the same columns as 15; only the
-- settings Greenplum 7 has (catalog/gp7_settings.txt) or custom ones with a dot.
-- Not those the real server hides from it.  The rules are PostgreSQL's own.
DROP VIEW pg_catalog.pg_settings;
CREATE VIEW pg_catalog.pg_settings AS
    SELECT *
    FROM pg_catalog.pg_show_all_settings() AS A
    WHERE pg_catalog.gpemu_setting_exists(A.name)
      -- What a real Greenplum 7.0.0 server keeps out of pg_settings (GUC_NO_SHOW_ALL)
      -- and PostgreSQL 15 lists: SHOW and current_setting() still answer them.
      AND A.name NOT IN (
          'allow_system_table_mods', 'archive_command', 'archive_timeout',
          'autovacuum_freeze_max_age', 'autovacuum_vacuum_cost_delay',
          'autovacuum_vacuum_cost_limit', 'autovacuum_vacuum_scale_factor',
          'autovacuum_vacuum_threshold', 'bgwriter_delay', 'bgwriter_lru_maxpages',
          'bgwriter_lru_multiplier', 'checkpoint_timeout', 'checkpoint_warning',
          'commit_delay', 'commit_siblings', 'config_file', 'data_directory',
          'external_pid_file', 'fsync', 'full_page_writes', 'geqo', 'geqo_effort',
          'geqo_generations', 'geqo_pool_size', 'geqo_selection_bias', 'geqo_threshold',
          'hba_file', 'ident_file', 'ignore_system_indexes', 'log_destination',
          'log_directory', 'log_filename', 'log_line_prefix', 'post_auth_delay',
          'pre_auth_delay', 'syslog_facility', 'syslog_ident', 'trace_notify', 'trace_sort',
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
