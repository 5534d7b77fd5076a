-- Prepared (two-phase) transactions on the instance; the same on every family.
-- $1: age in seconds above which a prepared transaction counts as stale.
-- Columns: collector, item, labels, value.
SELECT 'prepared', v.item, ARRAY[]::text[], v.value
FROM (
    SELECT count(*) AS n,
           max(extract(epoch FROM clock_timestamp() - prepared)) AS oldest,
           count(*) FILTER (WHERE prepared < clock_timestamp() - $1 * interval '1 second') AS stale
    FROM pg_prepared_xacts
) p,
LATERAL (VALUES
    ('count', p.n::float8),
    ('max', current_setting('max_prepared_transactions')::float8),
    ('oldest_age', coalesce(p.oldest, 0)::float8),
    ('stale', p.stale::float8)
) v(item, value)
