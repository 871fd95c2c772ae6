-- The tick's sweep for concurrency slots that no completion handed over.
-- It counts a key's runs in sluice.ready from the key's oldest gates, so its
-- cost follows the key's maximum, not the number of runs the key holds.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

SELECT sluice.define_task('sweep', concurrency => '{"key": "all", "max": 2}');
SELECT sluice.define_task('filler', concurrency => '{"key": "$.n", "max": 1}');

-- Gates in the heap in a different order from their runs. The filler's gates
-- take the first pages, and the key's two oldest runs (ready) come after
-- them. Once the filler runs are cancelled and vacuumed away, the key's held
-- runs fill the pages the filler left.
SELECT count(*) AS fillers FROM unnest(sluice.enqueue_many('filler',
    (SELECT array_agg(jsonb_build_object('n', i)) FROM generate_series(1, 600) i)));
SELECT count(*) AS sweep_ready FROM unnest(sluice.enqueue_many('sweep', array_fill('{}'::jsonb, ARRAY[2])));
SELECT jsonb_build_array('sweep', 0, 'all')::text AS sweep_key \gset
SELECT count(*) FILTER (WHERE sluice.cancel(id)) AS fillers_cancelled FROM sluice.runs WHERE task = 'filler';
-- An autovacuum worker's snapshot would keep the cancelled gates: wait for it.
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'autovacuum worker');
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
VACUUM sluice.run_gates;
SELECT count(*) AS sweep_more FROM unnest(sluice.enqueue_many('sweep', array_fill('{}'::jsonb, ARRAY[300])));
SELECT (SELECT count(*) FROM sluice.held WHERE task = 'sweep') AS held,
       (SELECT count(*) FROM sluice.ready WHERE task = 'sweep') AS ready;
-- Some held run's gate comes before a ready run's gate in the heap.
SELECT min(g.ctid) FILTER (WHERE h.run_id IS NOT NULL) < max(g.ctid) FILTER (WHERE h.run_id IS NULL)
       AS held_gates_come_first
FROM sluice.run_gates g LEFT JOIN sluice.held h ON h.run_id = g.run_id
WHERE g.gate_key = :'sweep_key';

-- Counting the two ready runs reads two gates, not the 300 held ones.
BEGIN;
SELECT seq_tup_read + idx_tup_fetch AS read_before FROM pg_stat_xact_user_tables WHERE relid = 'sluice.run_gates'::regclass \gset
SELECT sluice._ready_of_key(:'sweep_key', 2) AS ready_counted;
SELECT seq_tup_read + idx_tup_fetch - :read_before AS gates_read
FROM pg_stat_xact_user_tables WHERE relid = 'sluice.run_gates'::regclass;
COMMIT;
SELECT released FROM sluice.tick();

-- The count stays exact when a ready run is not among the oldest: a freed
-- slot goes to the held run of the highest priority, the newest here.
SELECT sluice.register_worker('sw', ARRAY['sweep'], slots => 10) AS sw \gset
SELECT array_agg(run_id ORDER BY run_id) AS oldest FROM sluice.claim(:'sw', 10) \gset
SELECT sluice.enqueue('sweep', '{}', priority => 9) AS urgent \gset
SELECT count(*) AS completed FROM sluice.complete((:'oldest'::bigint[])[1:1], ARRAY[1], ARRAY['{}'::jsonb]);
SELECT array_agg(run_id) = ARRAY[:urgent]::bigint[] AS urgent_is_ready FROM sluice.ready WHERE task = 'sweep';
SELECT sluice._ready_of_key(:'sweep_key', 2) AS ready_counted;
-- One running and one ready fill the maximum of 2: the sweep hands over none.
SELECT released FROM sluice.tick();
SELECT max_running, running, waiting FROM sluice.concurrency_status WHERE task = 'sweep';

-- A raised maximum leaves free slots beyond them, and the sweep fills them.
SELECT sluice.define_task('sweep', concurrency => '{"key": "all", "max": 5}');
SELECT released FROM sluice.tick();
SELECT count(*) AS ready FROM sluice.ready WHERE task = 'sweep';
