-- Claims and completions of runs in several history partitions. The claim
-- and complete functions update sluice.runs through _start_runs and
-- _finish_runs, which run the update once per partition that contains ids.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

SELECT sluice.configure(partition_interval => '1 minute');
SELECT sluice.define_task('job', max_attempts => 3, backoff_base => '0', backoff_jitter => 0);
SELECT sluice.register_worker('w', ARRAY['job'], slots => 20, lease_timeout => '1 day') AS w \gset

-- Two runs in the first partition, one of which fails once, so that it is
-- queued again next to runs of later partitions.
SELECT sluice.enqueue('job', '{"n": 1}') AS r1 \gset
SELECT sluice.enqueue('job', '{"n": 2}') AS r2 \gset
SELECT count(*) FROM sluice.claim(:'w', 1);
SELECT sluice.fail(:r1, 1, 'first try');

-- Three partitions: two runs in the second, one in the third.
SET sluice.clock_offset = '2 minutes';
SELECT rotated FROM sluice.maintain();
SELECT sluice.enqueue('job', '{"n": 3}') AS r3 \gset
SELECT sluice.enqueue('job', '{"n": 4}') AS r4 \gset
SET sluice.clock_offset = '4 minutes';
SELECT rotated FROM sluice.maintain();
SELECT sluice.enqueue('job', '{"n": 5}') AS r5 \gset
SELECT tableoid::regclass AS partition, pg_catalog.array_agg(input->>'n' ORDER BY id) AS runs
FROM sluice.runs GROUP BY 1 ORDER BY 1;

-- One claim starts the queued runs of all three partitions.
SELECT input->>'n' AS n, attempt FROM sluice.claim(:'w', 10) ORDER BY run_id;
SELECT input->>'n' AS n, status, attempt, worker_id = :'w' AS by_w, started_at IS NOT NULL AS started
FROM sluice.runs ORDER BY id;

-- One completion finishes them, each with its own output.
SELECT pg_catalog.array_agg(c ORDER BY c) = ARRAY[:r1, :r2, :r3, :r4, :r5]::bigint[] AS all_accepted
FROM sluice.complete(ARRAY[:r5, :r1, :r4, :r2, :r3]::bigint[], ARRAY[1, 2, 1, 1, 1],
                     ARRAY['{"out": 5}', '{"out": 1}', '{"out": 4}', '{"out": 2}', '{"out": 3}']::jsonb[]) AS c;
SELECT input->>'n' AS n, status, output, finished_at IS NOT NULL AS finished FROM sluice.runs ORDER BY id;

-- Only runs in the expected state change; others are not returned.
SELECT count(*) FROM sluice._start_runs(ARRAY[:r1, :r5]::bigint[], :'w', sluice.now());
SELECT count(*) FROM sluice._finish_runs(ARRAY[:r1]::bigint[], ARRAY['{}']::jsonb[], sluice.now());
SELECT count(*) FROM sluice._start_runs(NULL, :'w', sluice.now());
SELECT count(*) FROM sluice._start_runs(ARRAY[NULL, 999999999999999]::bigint[], :'w', sluice.now());

-- A dropped partition: the runs left in the others are still claimed and
-- completed. The first two partitions go once their runs are past retention.
SELECT sluice.enqueue('job', '{"n": 6}') AS r6 \gset
SELECT sluice.configure(retention => '1 minute');
SET sluice.clock_offset = '10 minutes';
SELECT rotated, dropped_partitions FROM sluice.maintain();
SELECT number FROM sluice.run_partitions ORDER BY number;
SELECT input->>'n' AS n FROM sluice.claim(:'w', 10);
SELECT count(*) FROM sluice.complete(ARRAY[:r6]::bigint[], ARRAY[1], ARRAY['{}']::jsonb[]);
SELECT input->>'n' AS n, status FROM sluice.runs ORDER BY id;

-- A partition moved to another schema stays attached, and a new table takes
-- its old name. The claim updates the attached partition, not that table.
SELECT sluice.enqueue('job', '{"n": 7}') AS r7 \gset
SELECT input->>'n' AS n FROM sluice.claim(:'w', 10);
SELECT sluice.enqueue('job', '{"n": 8}') AS r8 \gset
CREATE SCHEMA archive;
ALTER TABLE sluice.runs_p3 SET SCHEMA archive;
CREATE TABLE sluice.runs_p3 (LIKE sluice.runs);
SELECT input->>'n' AS n FROM sluice.claim(:'w', 10);
SELECT tableoid::regclass AS partition, input->>'n' AS n, status FROM sluice.runs WHERE id IN (:r7, :r8) ORDER BY id;
DROP TABLE sluice.runs_p3;
ALTER TABLE archive.runs_p3 SET SCHEMA sluice;
DROP SCHEMA archive;

-- A trigger on a partition that starts the runs of four other partitions
-- while the update of its own runs executes: the nested call runs the same
-- kept plan as the outer one, in a new session.
SELECT sluice.enqueue('job', '{"n": 9}') AS r9 \gset
DO $$
BEGIN
    FOR i IN 1..4 LOOP
        PERFORM pg_catalog.set_config('sluice.clock_offset', (10 + 2 * i)::text || ' minutes', false);
        PERFORM sluice.maintain();
        PERFORM sluice.enqueue('job', jsonb_build_object('n', 9 + i));
    END LOOP;
END
$$;
CREATE FUNCTION start_other_partitions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM sluice._start_runs(ARRAY(SELECT r.id FROM sluice.runs r
                                          WHERE r.status = 'queued' AND r.tableoid <> TG_RELID),
                                    NEW.worker_id, NEW.started_at);
    RETURN NULL;
END
$$;
CREATE TRIGGER start_other_partitions AFTER UPDATE ON sluice.runs_p3
    FOR EACH ROW WHEN (NEW.status = 'running') EXECUTE FUNCTION start_other_partitions();
\c
SELECT input->>'n' AS n FROM sluice._start_runs(ARRAY[:r9]::bigint[], :'w', pg_catalog.now());
SELECT tableoid::regclass AS partition, input->>'n' AS n, status FROM sluice.runs WHERE id >= :r9 ORDER BY id;
DROP TRIGGER start_other_partitions ON sluice.runs_p3;
DROP FUNCTION start_other_partitions();

-- A role with privileges on the tables that existed at install, sluice.runs
-- among them, claims and completes runs of a partition started later: the
-- updates go through sluice.runs, whose privileges apply.
CREATE ROLE regress_sluice_worker;
GRANT USAGE ON SCHEMA sluice TO regress_sluice_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA sluice TO regress_sluice_worker;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA sluice TO regress_sluice_worker;
SET sluice.clock_offset = '30 minutes';
SELECT rotated FROM sluice.maintain();
SELECT sluice.enqueue('job', '{"n": 20}') AS r20 \gset
SELECT has_table_privilege('regress_sluice_worker', (SELECT tableoid FROM sluice.runs WHERE id = :r20), 'UPDATE')
    AS partition_granted;
SET ROLE regress_sluice_worker;
SELECT input->>'n' AS n FROM sluice.claim(:'w', 10);
SELECT count(*) FROM sluice.complete(ARRAY[:r20]::bigint[], ARRAY[1], ARRAY['{}']::jsonb[]);
RESET ROLE;
SELECT status FROM sluice.runs WHERE id = :r20;
DROP OWNED BY regress_sluice_worker;
DROP ROLE regress_sluice_worker;
