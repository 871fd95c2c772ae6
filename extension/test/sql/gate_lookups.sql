-- Claims, completions and cancels read a run's gates by run id, through the
-- primary key of sluice.run_gates, also when the table's statistics show no
-- rows while it contains thousands of gates. An index that starts with
-- another column can serve a condition on run_id by reading all of it, and
-- under such statistics the planner took that for the cheaper path.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

SELECT sluice.define_task('keyed', concurrency => '{"key": "$.k", "max": 10}');

-- Statistics taken after a drain: the table keeps its pages, and VACUUM
-- counts no live row in them.
SELECT count(*) AS enqueued FROM unnest(sluice.enqueue_many('keyed',
    (SELECT array_agg(jsonb_build_object('k', i % 100)) FROM generate_series(1, 3000) i))) AS e(id);
SELECT count(*) FILTER (WHERE sluice.cancel(r.id)) AS cancelled FROM sluice.runs r WHERE r.task = 'keyed';
VACUUM ANALYZE sluice.run_gates;
SELECT relpages > 0 AS has_pages, reltuples = 0 AS counted_no_rows
FROM pg_class WHERE oid = 'sluice.run_gates'::regclass;

-- The table fills again; the statistics stay as they were.
SELECT count(*) AS enqueued FROM unnest(sluice.enqueue_many('keyed',
    (SELECT array_agg(jsonb_build_object('k', i % 1000)) FROM generate_series(1, 20000) i))) AS e(id);
SELECT count(*) AS gates FROM sluice.run_gates;

-- A claim of ten keyed runs, the completion of five and the cancel of the
-- other five while they run read a few primary key entries per run and
-- scan the key index not once.
SELECT sluice.register_worker('w', ARRAY['keyed'], slots => 10) AS w \gset
BEGIN;
-- Counters not yet sent to the statistics system carry over between
-- transactions, so the checks below take differences.
SELECT pg_stat_get_xact_numscans('sluice.run_gates_key_idx'::regclass) AS key_scans_before,
       pg_stat_get_xact_tuples_returned('sluice.run_gates_pkey'::regclass) AS pkey_read_before \gset
SELECT array_agg(run_id ORDER BY run_id) AS claimed FROM sluice.claim(:'w', 10) \gset
SELECT cardinality(:'claimed'::bigint[]) AS claimed_runs;
SELECT count(*) AS completed
FROM sluice.complete((:'claimed'::bigint[])[1:5], array_fill(1, ARRAY[5]), array_fill('{}'::jsonb, ARRAY[5]));
SELECT count(*) FILTER (WHERE sluice.cancel(c.id)) AS cancelled_running
FROM unnest((:'claimed'::bigint[])[6:10]) AS c(id);
SELECT pg_stat_get_xact_numscans('sluice.run_gates_key_idx'::regclass) - :key_scans_before AS key_index_scans,
       pg_stat_get_xact_tuples_returned('sluice.run_gates_pkey'::regclass) - :pkey_read_before
           BETWEEN 10 AND 100 AS few_primary_key_entries_read;
COMMIT;

-- The ten slots are free again, and each went to a held run of its key.
SELECT sum(running) AS running FROM sluice.concurrency_slots;
SELECT (SELECT count(*) FROM sluice.ready) AS ready, (SELECT count(*) FROM sluice.held) AS held;
