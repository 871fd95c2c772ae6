-- Claims, completions, cancels and the coordinator's slot sweep read gates,
-- held runs, slot rows and leases through the index meant for each lookup,
-- also when the statistics of those tables show no rows while they contain
-- thousands. Under such statistics the planner took a full read of a table
-- or of another index for as cheap as a probe.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

SELECT sluice.define_task('keyed', concurrency => '{"key": "$.k", "max": 10}');
SELECT sluice.define_task('plain');
SELECT sluice.define_task('stale', schedule_timeout => '1 minute');

-- The tick fails runs that waited past their schedule timeout by the ids of
-- their ready rows, one probe each. Joined back to the table, the overdue
-- rows read every ready run once per overdue run. Here the ready queue is
-- drained by the timeout itself first.
SELECT count(*) AS enqueued FROM unnest(sluice.enqueue_many('stale', array_fill('{}'::jsonb, ARRAY[2000]))) AS e(id);
SET sluice.clock_offset = '2 minutes';
SELECT sluice.expire_queued(5000) AS expired;
VACUUM ANALYZE sluice.ready_0;
SELECT relpages > 0 AS has_pages, reltuples = 0 AS counted_no_rows FROM pg_class WHERE oid = 'sluice.ready_0'::regclass;
SELECT count(*) AS overdue_soon FROM unnest(sluice.enqueue_many('stale', array_fill('{}'::jsonb, ARRAY[2000]))) AS e(id);
SELECT count(*) AS waiting FROM unnest(sluice.enqueue_many('plain', array_fill('{}'::jsonb, ARRAY[4000]))) AS e(id);
SET sluice.clock_offset = '4 minutes';
BEGIN;
SELECT pg_stat_get_xact_tuples_returned('sluice.ready_0_pkey'::regclass) AS ready_read_before \gset
SELECT sluice.expire_queued(5000) AS expired;
SELECT pg_stat_get_xact_tuples_returned('sluice.ready_0_pkey'::regclass) - :ready_read_before
           BETWEEN 2000 AND 2500 AS one_probe_per_overdue_run;
COMMIT;
RESET sluice.clock_offset;

-- Statistics taken after a drain: the table keeps its pages, and VACUUM
-- counts no live row in them.
SELECT count(*) AS enqueued FROM unnest(sluice.enqueue_many('keyed',
    (SELECT array_agg(jsonb_build_object('k', i % 100)) FROM generate_series(1, 3000) i))) AS e(id);
SELECT count(*) FILTER (WHERE sluice.cancel(r.id)) AS cancelled FROM sluice.runs r WHERE r.task = 'keyed';
SELECT count(*) AS enqueued FROM unnest(sluice.enqueue_many('plain', array_fill('{}'::jsonb, ARRAY[2000]))) AS e(id);
SELECT sluice.register_worker('p', ARRAY['plain'], slots => 2000) AS p \gset
SELECT array_agg(run_id) AS plain_runs FROM sluice.claim(:'p', 2000) \gset
SELECT count(*) AS completed FROM sluice.complete(:'plain_runs'::bigint[], array_fill(1, ARRAY[2000]),
                                                  array_fill('{}'::jsonb, ARRAY[2000]));
-- Slot rows stay once created, so a table of them without live rows is made
-- by hand.
INSERT INTO sluice.concurrency_slots (gate_key, task, rule, key, max_running)
SELECT 'gone ' || i, 'keyed', 0, i::text, 10 FROM generate_series(1, 2000) i;
DELETE FROM sluice.concurrency_slots;
VACUUM ANALYZE sluice.run_gates, sluice.held, sluice.leases_0, sluice.concurrency_slots;
SELECT relname, relpages > 0 AS has_pages, reltuples = 0 AS counted_no_rows
FROM pg_class
WHERE oid IN ('sluice.run_gates'::regclass, 'sluice.held'::regclass, 'sluice.leases_0'::regclass,
              'sluice.concurrency_slots'::regclass)
ORDER BY relname;

-- The tables fill again, and the statistics stay as they were. Long keys make
-- the key index taller than the primary key, and under these statistics the
-- planner then preferred a full read of the primary key.
SELECT count(*) AS enqueued FROM unnest(sluice.enqueue_many('keyed',
    (SELECT array_agg(jsonb_build_object('k', repeat('k', 200) || i % 1000)) FROM generate_series(1, 20000) i))) AS e(id);
SELECT (SELECT count(*) FROM sluice.run_gates) AS gates, (SELECT count(*) FROM sluice.held) AS held;

-- A claim of ten keyed runs, the completion of five and the cancel of the
-- other five while they run read a few primary key entries per run and
-- scan the key index not once.
-- A thousand keyed runs, one per key, keep running meanwhile: a thousand
-- slot rows and leases that the checked calls must not read.
SELECT sluice.register_worker('many', ARRAY['keyed'], slots => 1000) AS many \gset
SELECT count(*) AS running FROM sluice.claim(:'many', 1000);
SELECT sluice.register_worker('w', ARRAY['keyed'], slots => 10) AS w \gset
BEGIN;
-- Counters not yet sent to the statistics system carry over between
-- transactions, so the checks below take differences.
SELECT pg_stat_get_xact_numscans('sluice.run_gates_key_idx'::regclass) AS key_scans_before,
       pg_stat_get_xact_tuples_returned('sluice.run_gates_pkey'::regclass) AS pkey_read_before,
       pg_stat_get_xact_tuples_returned('sluice.concurrency_slots_pkey'::regclass) AS slots_read_before,
       pg_stat_get_xact_tuples_returned('sluice.leases_0_pkey'::regclass) AS leases_read_before \gset
SELECT array_agg(run_id ORDER BY run_id) AS claimed FROM sluice.claim(:'w', 10) \gset
SELECT cardinality(:'claimed'::bigint[]) AS claimed_runs;
SELECT count(*) AS completed
FROM sluice.complete((:'claimed'::bigint[])[1:5], array_fill(1, ARRAY[5]), array_fill('{}'::jsonb, ARRAY[5]));
SELECT count(*) FILTER (WHERE sluice.cancel(c.id)) AS cancelled_running
FROM unnest((:'claimed'::bigint[])[6:10]) AS c(id);
SELECT pg_stat_get_xact_numscans('sluice.run_gates_key_idx'::regclass) - :key_scans_before AS key_index_scans,
       pg_stat_get_xact_tuples_returned('sluice.run_gates_pkey'::regclass) - :pkey_read_before
           BETWEEN 10 AND 100 AS few_primary_key_entries_read;
SELECT pg_stat_get_xact_tuples_returned('sluice.concurrency_slots_pkey'::regclass) - :slots_read_before
           BETWEEN 10 AND 300 AS few_slot_rows_read,
       pg_stat_get_xact_tuples_returned('sluice.leases_0_pkey'::regclass) - :leases_read_before
           BETWEEN 10 AND 200 AS few_leases_read;
COMMIT;

-- The ten slots are free again, and each went to a held run of its key.
SELECT sum(running) AS running FROM sluice.concurrency_slots;
SELECT (SELECT count(*) FROM sluice.ready) AS ready, (SELECT count(*) FROM sluice.held) AS held;

-- The sweep counts each key's ready runs from the key index alone. Read
-- through the primary key, each count read every gate.
BEGIN;
SELECT pg_stat_get_xact_tuples_returned('sluice.run_gates_pkey'::regclass) AS pkey_read_before,
       pg_stat_get_xact_numscans('sluice.run_gates_key_idx'::regclass) AS key_scans_before \gset
SELECT sluice.release_concurrency_held() AS released;
SELECT pg_stat_get_xact_tuples_returned('sluice.run_gates_pkey'::regclass) - :pkey_read_before AS primary_key_entries_read,
       pg_stat_get_xact_numscans('sluice.run_gates_key_idx'::regclass) - :key_scans_before >= 1000 AS key_index_probed_per_key;
COMMIT;

-- A cancel finds a held run by its primary key, not by an index of held
-- runs per key, which ends with the run id.
SELECT min(run_id) AS held_run FROM sluice.held \gset
BEGIN;
SELECT pg_stat_get_xact_numscans('sluice.held_concurrency_idx'::regclass) AS held_key_scans_before \gset
SELECT sluice.cancel(:held_run) AS cancelled_held;
SELECT pg_stat_get_xact_numscans('sluice.held_concurrency_idx'::regclass) - :held_key_scans_before AS held_key_index_scans;
COMMIT;

-- The tick promotes due runs from sluice.delayed by their ids, one probe
-- each. Joined back to the table, the due runs read every delayed run.
SELECT count(*) AS delayed FROM unnest(sluice.enqueue_many('plain', array_fill('{}'::jsonb, ARRAY[2000]),
                                                           delay => '1 minute')) AS e(id);
SET sluice.clock_offset = '2 minutes';
SELECT sluice.promote_due(5000) AS promoted;
VACUUM ANALYZE sluice.delayed;
SELECT relpages > 0 AS has_pages, reltuples = 0 AS counted_no_rows FROM pg_class WHERE oid = 'sluice.delayed'::regclass;
SELECT count(*) AS due_soon FROM unnest(sluice.enqueue_many('plain', array_fill('{}'::jsonb, ARRAY[2000]),
                                                            delay => '1 minute')) AS e(id);
SELECT count(*) AS due_later FROM unnest(sluice.enqueue_many('plain', array_fill('{}'::jsonb, ARRAY[4000]),
                                                             delay => '1 hour')) AS e(id);
SET sluice.clock_offset = '4 minutes';
BEGIN;
SELECT pg_stat_get_xact_tuples_returned('sluice.delayed_pkey'::regclass) AS delayed_read_before \gset
SELECT sluice.promote_due(5000) AS promoted;
SELECT pg_stat_get_xact_tuples_returned('sluice.delayed_pkey'::regclass) - :delayed_read_before
           BETWEEN 2000 AND 2500 AS one_probe_per_due_run;
COMMIT;
RESET sluice.clock_offset;

-- Each kind of gate has its own index of held runs, so moving held runs
-- back takes a known kind and rejects any other.
SELECT sluice._unhold('other', 'k', 1);
