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
SELECT 'sluice.ready'::regclass IN (SELECT sluice.hot_tables_to_vacuum(min_dead => 100)) AS ready_listed;
SELECT 'sluice.ready'::regclass IN (SELECT sluice.hot_tables_to_vacuum()) AS listed_below_min_dead;
SELECT sluice.hot_tables_dead_rows() >= 200 AS dead_rows_counted;
VACUUM sluice.ready;
SELECT pg_stat_force_next_flush();
SELECT 'sluice.ready'::regclass IN (SELECT sluice.hot_tables_to_vacuum(min_dead => 100)) AS listed_after_vacuum;
