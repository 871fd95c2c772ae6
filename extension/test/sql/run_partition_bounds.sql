-- _start_runs and _finish_runs at the bounds of history partitions: ids at
-- each partition's first and last id, in a gap between partitions, below
-- the first and above the last, with and without a default partition.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

-- runs_p0 contains [0, 1e12). Two more partitions leave [2e12, 3e12) uncovered.
CREATE TABLE sluice.runs_a PARTITION OF sluice.runs FOR VALUES FROM (1000000000000) TO (2000000000000);
CREATE TABLE sluice.runs_c PARTITION OF sluice.runs FOR VALUES FROM (3000000000000) TO (4000000000000);
CREATE FUNCTION insert_runs(ids bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO sluice.runs (id, task, queue, status, priority, input, max_attempts, created_at, run_at)
    SELECT i, 'job', 'default', 'queued', 0, '{}', 3, now(), now() FROM unnest(ids) AS i
$$;
SELECT insert_runs(ARRAY[0, 999999999999, 1000000000000, 1999999999999, 3000000000000, 3999999999999]);

-- Each update statement records the partitions and the ids it changed. A
-- statement that changes rows of two partitions had a range spanning them.
CREATE TABLE statements (n serial, partitions text[], ids bigint[]);
CREATE FUNCTION record_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO statements (partitions, ids)
    SELECT pg_catalog.array_agg(DISTINCT r.tableoid::regclass::text), pg_catalog.array_agg(n.id ORDER BY n.id)
    FROM new_rows n JOIN sluice.runs r ON r.id = n.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER record_statement AFTER UPDATE ON sluice.runs REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_statement();

\set ids 'ARRAY[-9223372036854775808, -5, 0, 999999999999, 1000000000000, 1999999999999, 2000000000000, 2500000000000, 2999999999999, 3000000000000, 3999999999999, 4000000000000, 9223372036854775807]::bigint[]'

-- No default partition: the ids outside the partitions are left out.
SELECT pg_catalog.array_agg(id ORDER BY id) AS started FROM sluice._start_runs(:ids, gen_random_uuid(), now());
SELECT partitions, ids FROM statements ORDER BY n;
TRUNCATE statements;
SELECT pg_catalog.array_agg(id ORDER BY id) AS finished
FROM sluice._finish_runs(:ids, array_fill('{"done": true}'::jsonb, ARRAY[13]), now());
SELECT partitions, ids FROM statements ORDER BY n;
TRUNCATE statements;
SELECT count(*) AS succeeded FROM sluice.runs WHERE status = 'succeeded' AND output = '{"done": true}';

-- A default partition contains the ids below, between and above the others.
-- Each gap gets its own statement, so none spans another partition.
CREATE TABLE sluice.runs_default PARTITION OF sluice.runs DEFAULT;
SELECT insert_runs(ARRAY[-9223372036854775808, -5, 2000000000000, 2500000000000, 2999999999999,
                         4000000000000, 9223372036854775807]);
UPDATE sluice.runs SET status = 'queued';
TRUNCATE statements;
SELECT pg_catalog.array_agg(id ORDER BY id) AS started FROM sluice._start_runs(:ids, gen_random_uuid(), now());
SELECT partitions, ids FROM statements ORDER BY n;
TRUNCATE statements;
SELECT count(*) AS returned, count(DISTINCT id) AS distinct_ids
FROM sluice._finish_runs(:ids, array_fill('{"done": true}'::jsonb, ARRAY[13]), now());
SELECT partitions, ids FROM statements ORDER BY n;
SELECT count(*) AS succeeded FROM sluice.runs WHERE status = 'succeeded';
DROP TRIGGER record_statement ON sluice.runs;

-- A role without UPDATE on sluice.runs is rejected before it takes a lock,
-- even when no id is in a partition and no update would run.
CREATE ROLE regress_sluice_reader;
GRANT USAGE ON SCHEMA sluice TO regress_sluice_reader;
GRANT SELECT ON sluice.runs TO regress_sluice_reader;
SET ROLE regress_sluice_reader;
SELECT count(*) FROM sluice._start_runs('{}', gen_random_uuid(), now());
SELECT count(*) FROM sluice._finish_runs('{}', '{}', now());
RESET ROLE;
GRANT UPDATE (status) ON sluice.runs TO regress_sluice_reader;
SET ROLE regress_sluice_reader;
SELECT count(*) FROM sluice._start_runs('{}', gen_random_uuid(), now());
RESET ROLE;
DROP OWNED BY regress_sluice_reader;
DROP ROLE regress_sluice_reader;

-- A column of sluice.runs altered to another type: the update now returns
-- that type, and the function rejects it instead of returning its bytes as
-- the declared type.
UPDATE sluice.runs SET status = 'queued' WHERE id = 0;
ALTER TABLE sluice.runs ALTER COLUMN max_attempts TYPE numeric;
SELECT id, max_attempts FROM sluice._start_runs(ARRAY[0]::bigint[], gen_random_uuid(), now());

DROP TABLE statements;
DROP FUNCTION record_statement();
DROP FUNCTION insert_runs(bigint[]);
DROP EXTENSION sluice;
CREATE EXTENSION sluice;
