SET allow_system_table_mods = on;
-- gpemu: the coordinator's topology catalog (see docs/emulation.md).  Run as a
-- superuser in each database of the coordinator (template1 first, then
-- postgres), after gp6.sql / gp7.sql; safe to run again.  Creating a relation
-- in pg_catalog needs allow_system_table_mods; the table gets an ordinary OID,
-- so the harness then fills it with plain INSERTs, without that setting.

BEGIN;

-- GP6 / GP7 column set, in catalog order.
CREATE TABLE IF NOT EXISTS pg_catalog.gp_segment_configuration (
    dbid smallint NOT NULL,
    content smallint NOT NULL,
    role "char" NOT NULL,
    preferred_role "char" NOT NULL,
    mode "char" NOT NULL,
    status "char" NOT NULL,
    port integer NOT NULL,
    hostname text,
    address text,
    datadir text
);
GRANT SELECT ON pg_catalog.gp_segment_configuration TO PUBLIC;

COMMIT;
