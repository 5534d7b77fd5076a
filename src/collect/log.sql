-- The log collector's read, its one statement per instance per round (not part of the
-- combined statement: its parameters and bytea answer are its own). GP6 and GP7 alike. Every function is in both
-- families' catalogs: pg_ls_dir(text, bool, bool), pg_stat_file(text, bool),
-- pg_read_binary_file(text, int8, int8, bool), current_setting(text).
-- $1 text: the file being followed ('' at start), $2 int8: the offset read up to,
-- $3 int8: the most bytes to read. One row: true, the newest gpdb-*.csv and its
-- size, the followed file's size, where this read starts (past $2 when more than $3
-- bytes were added: the rest is skipped), the bytes, and the file after the followed one.
-- Run only once `log_gp6.sql` / `log_gp7.sql` said the role may read server files.
WITH dir AS (SELECT current_setting('log_directory') AS d),
files AS (
    SELECT f AS name, (pg_stat_file(dir.d || '/' || f, true)).size AS size
    FROM dir, pg_ls_dir(dir.d, true, false) AS f
    WHERE f LIKE 'gpdb-%.csv'
),
followed AS (
    SELECT name, size, greatest($2::int8, size - $3::int8) AS start
    FROM files WHERE name = $1::text
)
SELECT true AS ok,
       (SELECT name FROM files ORDER BY name DESC LIMIT 1) AS newest,
       (SELECT size FROM files ORDER BY name DESC LIMIT 1) AS newest_size,
       f.size,
       f.start,
       CASE WHEN f.size > f.start
            THEN pg_read_binary_file(dir.d || '/' || f.name, f.start, f.size - f.start, true)
       END AS data,
       (SELECT name FROM files WHERE name > $1::text ORDER BY name LIMIT 1) AS next
FROM dir LEFT JOIN followed f ON true
