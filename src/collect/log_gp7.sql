-- May the role read the server log? GP7: a superuser, or a member of pg_read_server_files
-- who was granted the three file functions (PostgreSQL 12 revokes them from PUBLIC). Run
-- once, and again now and then while it may not, never in the read itself (see
-- log_gp6.sql).
SELECT current_setting('is_superuser') = 'on'
    OR (pg_has_role(current_user, 'pg_read_server_files', 'MEMBER')
        AND has_function_privilege('pg_catalog.pg_ls_dir(text, boolean, boolean)', 'EXECUTE')
        AND has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
        AND has_function_privilege(
            'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)', 'EXECUTE'))
