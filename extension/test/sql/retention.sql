-- Retention: history is partitioned by run id, a new partition starts every
-- partition_interval, and a partition whose runs all finished before the
-- retention period is dropped whole.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

SELECT retention, partition_interval FROM sluice.configure(retention => '1 hour', partition_interval => '10 minutes');
SELECT sluice.configure(retention => '0');
SELECT sluice.configure(partition_interval => '1 second');

SELECT sluice.define_task('job', backoff_base => '0');
SELECT sluice.register_worker('w', ARRAY['job'], lease_timeout => '1 day') AS w \gset

-- Old runs: finished, one with an idempotency key and a failed attempt.
SELECT sluice.enqueue('job', '{"age": "old"}', idempotency_key => 'old-key') AS old1 \gset
SELECT sluice.enqueue('job', '{"age": "old"}') AS old2 \gset
SELECT count(*) FROM sluice.claim(:'w', 10);
SELECT sluice.fail(:old1, 1, 'first try failed');
SELECT count(*) FROM sluice.claim(:'w', 10);
SELECT sluice.complete(:old1, 2, '{}'), sluice.complete(:old2, 1, '{}');
-- An old run that is still live keeps its partition.
SELECT sluice.enqueue('job', '{"age": "old", "live": true}', delay => '2 hours') AS old_live \gset

-- Too early to rotate.
SELECT rotated, dropped_partitions FROM sluice.maintain();
SET sluice.clock_offset = '11 minutes';
SELECT rotated, dropped_partitions FROM sluice.maintain();
SELECT number, first_id, closed_at IS NOT NULL AS closed FROM sluice.run_partitions ORDER BY number;

-- New runs land in the new partition.
SELECT sluice.enqueue('job', '{"age": "new"}') AS new1 \gset
SELECT :new1 >= 1000000000000 AS in_second_partition;
SELECT tableoid::regclass AS partition, count(*) FROM sluice.runs GROUP BY 1 ORDER BY 1;

-- Past the retention period the old partition stays while it has a live run.
SET sluice.clock_offset = '2 hours';
SELECT rotated, dropped_partitions FROM sluice.maintain();
SELECT sluice.cancel(:old_live);
-- Once that run finished longer ago than the retention period, it goes.
SET sluice.clock_offset = '3 hours 30 minutes';
SELECT rotated, dropped_partitions FROM sluice.maintain();
SELECT count(*) AS old_runs_left FROM sluice.runs WHERE input ->> 'age' = 'old';
SELECT count(*) AS new_runs_left FROM sluice.runs WHERE id = :new1;
SELECT count(*) AS old_keys_left FROM sluice.idempotency_keys WHERE run_id = :old1;
SELECT count(*) AS old_errors_left FROM sluice.attempt_errors WHERE run_id = :old1;
SELECT number FROM sluice.run_partitions ORDER BY number;
SELECT * FROM sluice.run_result(:old1);
-- The key of a dropped run can be used again.
SELECT sluice.enqueue('job', '{}', idempotency_key => 'old-key') <> :old1 AS key_reusable;

-- The coordinator vacuums the tables of live runs once their dead rows reach
-- min_dead.
SELECT sluice.define_task('churn');
SELECT count(*) FROM unnest(sluice.enqueue_many('churn', array_fill('{}'::jsonb, ARRAY[300]))) AS ids;
DELETE FROM sluice.ready r USING sluice.runs u WHERE u.id = r.run_id AND u.task = 'churn' AND r.run_id % 3 <> 0;
SELECT pg_stat_force_next_flush();
SELECT 'sluice.ready_0'::regclass IN (SELECT sluice.hot_tables_to_vacuum(min_dead => 100)) AS ready_listed;
SELECT 'sluice.ready_0'::regclass IN (SELECT sluice.hot_tables_to_vacuum()) AS listed_below_min_dead;
SELECT sluice.hot_tables_dead_rows() >= 200 AS dead_rows_counted;
VACUUM sluice.ready;
SELECT pg_stat_force_next_flush();
SELECT 'sluice.ready_0'::regclass IN (SELECT sluice.hot_tables_to_vacuum(min_dead => 100)) AS listed_after_vacuum;

-- When a long transaction keeps vacuum from removing the dead rows of ready
-- and leases, shed_dead_rows sends new rows to the other partition, copies the
-- old partition's live rows over and truncates it.
SELECT sluice.define_task('shed');
SELECT sluice.register_worker('shedder', ARRAY['shed'], slots => 10) AS shedder \gset
SELECT count(*) FROM unnest(sluice.enqueue_many('shed', ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3}', '{"n": 4}']::jsonb[]));
CREATE TEMP TABLE shed_claimed AS SELECT run_id, attempt FROM sluice.claim(:'shedder', 2);
SELECT pg_stat_force_next_flush();
-- No snapshot older than min_snapshot_age transactions: vacuum can remove the
-- dead rows, so there is nothing to do. Too few dead rows: nothing to do.
SELECT sluice.shed_dead_rows(min_dead => 1) AS shed_without_old_snapshot;
SELECT sluice.shed_dead_rows(min_dead => 100000, min_snapshot_age => 0) AS shed_without_dead_rows;
SELECT sluice.shed_dead_rows(min_dead => 1, min_snapshot_age => 0) AS shed;
SELECT pg_catalog.pg_relation_size('sluice.ready_0') AS old_ready_size,
       pg_catalog.pg_relation_size('sluice.leases_0') AS old_leases_size;
SELECT u.input ->> 'n' AS n, (r.position >> 32) & 1 AS generation
FROM sluice.ready r JOIN sluice.runs u ON u.id = r.run_id WHERE r.task = 'shed' ORDER BY r.position;
SELECT count(*) AS moved_leases FROM sluice.leases l JOIN shed_claimed c USING (run_id) WHERE l.generation = 1;
-- A run enqueued after the move queues behind the copied ones, and the
-- claimed runs still complete.
SELECT sluice.enqueue('shed', '{"n": 5}') > 0 AS enqueued;
SELECT input ->> 'n' AS n FROM sluice.claim(:'shedder', 3) ORDER BY run_id;
SELECT count(*) AS completed
FROM sluice.complete((SELECT array_agg(run_id) FROM shed_claimed), (SELECT array_agg(attempt) FROM shed_claimed),
                     (SELECT array_agg('{}'::jsonb) FROM shed_claimed));
-- More ready runs than max_moved: the new rows go to the other partition, but
-- the old one is not copied. The next call copies it without moving on again.
SELECT count(*) FROM unnest(sluice.enqueue_many('shed', ARRAY['{"n": 6}', '{"n": 7}']::jsonb[]));
SELECT sluice.shed_dead_rows(min_dead => 0, max_moved => 1, min_snapshot_age => 0) AS shed_too_many;
SELECT sluice.enqueue('shed', '{"n": 8}') > 0 AS enqueued;
SELECT u.input ->> 'n' AS n, (r.position >> 32) & 1 AS generation
FROM sluice.ready r JOIN sluice.runs u ON u.id = r.run_id WHERE r.task = 'shed' ORDER BY r.position;
SELECT sluice.shed_dead_rows(min_dead => 1000000, max_moved => 1000) AS shed_after_giving_up;
SELECT u.input ->> 'n' AS n, (r.position >> 32) & 1 AS generation
FROM sluice.ready r JOIN sluice.runs u ON u.id = r.run_id WHERE r.task = 'shed' ORDER BY r.position;
SELECT pg_catalog.pg_relation_size('sluice.ready_1') AS old_ready_size;
SELECT input ->> 'n' AS n FROM sluice.claim(:'shedder', 10) ORDER BY run_id;
SELECT sluice.shed_dead_rows(min_dead => -1);
SELECT sluice.shed_dead_rows(max_moved => 2000000);
SELECT sluice.shed_dead_rows(min_snapshot_age => -1);
-- The shed copies what committed before its lock. A snapshot taken earlier
-- misses some of it, so the shed needs READ COMMITTED.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT sluice.shed_dead_rows(min_dead => 0);
ROLLBACK;
-- A run that took a position in the old generation but reached the table
-- after a shed (moved there by hand here) is copied by the next shed. Its old
-- position is lower than those of the runs the first shed copied, so it goes
-- ahead of them.
SELECT sluice.register_worker('shed-order', ARRAY['shed'], slots => 100) AS shed_order \gset
SELECT count(*) FROM unnest(sluice.enqueue_many('shed', ARRAY['{"n": 9}', '{"n": 10}', '{"n": 11}']::jsonb[]));
SELECT sluice.shed_dead_rows(min_dead => 0, min_snapshot_age => 0) AS shed;
UPDATE sluice.ready r SET position = r.position - (1::bigint << 32)
FROM sluice.runs u WHERE u.id = r.run_id AND u.input ->> 'n' = '11';
SELECT sluice.shed_dead_rows(min_dead => 1000000) AS shed_copies_the_late_run;
SELECT input ->> 'n' AS n FROM sluice.claim(:'shed_order', 1);
SELECT input ->> 'n' AS n FROM sluice.claim(:'shed_order', 1);
SELECT input ->> 'n' AS n FROM sluice.claim(:'shed_order', 1);
-- maintain() moves the sequence to the middle of its next block once it is
-- three quarters through its block, so that a shed always finds room below.
SELECT pg_catalog.setval('sluice.ready_position_seq', (7::bigint << 32) + 3 * (1::bigint << 30) + 5);
SELECT sluice.enqueue('shed', '{"n": 12}') > 0 AS enqueued;
SELECT rotated FROM sluice.maintain();
SELECT s.last_value >> 32 AS block, s.last_value & ((1::bigint << 32) - 1) = 1::bigint << 31 AS at_middle
FROM sluice.ready_position_seq s;
-- Without that move, the sequence runs into the next block at its start and
-- leaves no room below the new runs. The shed then puts the copied run just
-- after the last run that became ready before it, and the order stays right.
SELECT pg_catalog.setval('sluice.ready_position_seq', (9::bigint << 32) - 2);
SELECT count(*) FROM unnest(sluice.enqueue_many('shed', ARRAY['{"n": 13}', '{"n": 14}', '{"n": 15}']::jsonb[]));
SELECT sluice.shed_dead_rows(min_dead => 0) AS shed_after_crossing;
SELECT input ->> 'n' AS n FROM sluice.claim(:'shed_order', 1);
SELECT input ->> 'n' AS n FROM sluice.claim(:'shed_order', 1);
SELECT input ->> 'n' AS n FROM sluice.claim(:'shed_order', 1);
SELECT input ->> 'n' AS n FROM sluice.claim(:'shed_order', 1);
