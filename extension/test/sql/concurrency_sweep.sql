-- The tick's sweep for concurrency slots that no completion handed over.
-- It counts a key's ready runs from the key's oldest gates and stops when it
-- has enough, so it reads about the key's maximum, not every held run.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

SELECT sluice.define_task('other', concurrency => '{"key": "$.n", "max": 1}');
SELECT sluice.define_task('sweep', concurrency => '{"key": "all", "max": 2}');
SELECT jsonb_build_array('sweep', 0, 'all')::text AS sweep_key \gset

-- Gates of other keys with older runs, then the key's two oldest runs
-- (ready) and 300 more (held).
SELECT count(*) AS others FROM unnest(sluice.enqueue_many('other',
    (SELECT array_agg(jsonb_build_object('n', i)) FROM generate_series(1, 100) i)));
SELECT count(*) AS sweep_runs FROM unnest(sluice.enqueue_many('sweep', array_fill('{}'::jsonb, ARRAY[302])));
SELECT (SELECT count(*) FROM sluice.held WHERE task = 'sweep') AS held,
       (SELECT count(*) FROM sluice.ready WHERE task = 'sweep') AS ready;
-- In a running system, new gates fill pages that vacuum freed, so heap order
-- differs from run order. Here a same-value update moves the two ready runs'
-- gates off their full page, behind the held runs' gates.
UPDATE sluice.run_gates g SET units = g.units
WHERE g.run_id IN (SELECT r.run_id FROM sluice.ready r WHERE r.task = 'sweep');
SELECT min(g.ctid) FILTER (WHERE h.run_id IS NOT NULL) < max(g.ctid) FILTER (WHERE h.run_id IS NULL)
       AS held_gates_come_first
FROM sluice.run_gates g LEFT JOIN sluice.held h ON h.run_id = g.run_id
WHERE g.gate_key = :'sweep_key';

-- Counting the two ready runs reads two gates. The 300 held ones come first
-- in heap order, and the 100 other keys' gates come first in run order.
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

-- A key whose ready run is cancelled before any claim has no slot row, so no
-- completion hands its held runs a slot. The sweep moves one to ready: the
-- maximum of 1.
SELECT sluice.define_task('lone', concurrency => '{"key": "$.k", "max": 1}');
SELECT sluice.enqueue('lone', '{"k": "a"}') AS lone1 \gset
SELECT sluice.enqueue('lone', '{"k": "a"}') AS lone2 \gset
SELECT sluice.enqueue('lone', '{"k": "a"}') AS lone3 \gset
SELECT sluice.cancel(:lone1) AS cancelled;
SELECT count(*) AS slot_rows FROM sluice.concurrency_slots WHERE task = 'lone';
SELECT released FROM sluice.tick();
SELECT array_agg(run_id) = ARRAY[:lone2]::bigint[] AS oldest_held_is_ready FROM sluice.ready WHERE task = 'lone';
SELECT released FROM sluice.tick();
SELECT array_agg(run_id) = ARRAY[:lone3]::bigint[] AS newest_still_held FROM sluice.held WHERE task = 'lone';
