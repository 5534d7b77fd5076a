-- Settings that explain the figures; the same on every family (settings a
-- family lacks are simply absent). Numeric and boolean settings become values
-- with their unit, others (e.g. gp_resource_manager) an info sample.
-- max_wal_senders is read with current_setting(): Greenplum 6 hides it from
-- pg_settings (GUC_NO_SHOW_ALL), and every family has it (unitless).
-- Columns: collector, item, labels, value.
SELECT 'settings',
       CASE WHEN vartype IN ('bool', 'integer', 'real') THEN 'numeric' ELSE 'text' END,
       ARRAY[name,
             CASE WHEN vartype IN ('bool', 'integer', 'real') THEN coalesce(unit, '') ELSE setting END],
       CASE vartype
           WHEN 'bool' THEN CASE WHEN setting = 'on' THEN 1 ELSE 0 END
           WHEN 'integer' THEN setting::float8
           WHEN 'real' THEN setting::float8
           ELSE 1
       END::float8
FROM pg_settings
WHERE name IN ('gp_vmem_protect_limit', 'gp_resource_manager',
               'gp_enable_global_deadlock_detector', 'gp_vmem_idle_resource_timeout',
               'gp_cached_segworkers_threshold',
               'autovacuum_max_workers', 'max_worker_processes')
UNION ALL
SELECT 'settings', 'numeric', ARRAY['max_wal_senders', ''], current_setting('max_wal_senders')::float8
