-- Enqueueing: definitions, validation, idempotency, delays and priorities.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

SELECT sluice.define_task('email', max_attempts => 3, backoff_base => '0');
SELECT sluice.define_task('report', queue => 'reports', priority => 4, schedule_timeout => '1 minute');

-- Redefining replaces the options.
SELECT sluice.define_task('report', queue => 'reports', priority => 5, schedule_timeout => '1 minute');
SELECT name, queue, priority, max_attempts FROM sluice.tasks ORDER BY name;

-- A run is queued and ready at once; its id comes back.
SELECT sluice.enqueue('email', '{"to": "a@example.com"}') = 1 AS first_id_is_1;
SELECT id, task, queue, status, priority, attempt, input FROM sluice.runs ORDER BY id;
SELECT run_id, queue, task, priority FROM sluice.ready ORDER BY run_id;

-- Priority defaults to the task's and can be given per run.
SELECT sluice.enqueue('report', '{}') AS report_run \gset
SELECT sluice.enqueue('report', '{}', priority => 9) AS urgent_run \gset
SELECT id, priority FROM sluice.runs WHERE task = 'report' ORDER BY id;

-- A delayed run waits in sluice.delayed as scheduled.
SELECT sluice.enqueue('email', '{}', delay => '1 hour') AS delayed_run \gset
SELECT status FROM sluice.runs WHERE id = :delayed_run;
SELECT count(*) AS delayed_rows FROM sluice.delayed WHERE run_id = :delayed_run;
SELECT sluice.enqueue('email', '{}', run_at => sluice.now() - interval '1 minute') AS past_run \gset
SELECT status FROM sluice.runs WHERE id = :past_run;

-- Idempotency: the same key returns the first run.
SELECT sluice.enqueue('email', '{"n": 1}', idempotency_key => 'receipt-42') AS keyed_run \gset
SELECT sluice.enqueue('email', '{"n": 2}', idempotency_key => 'receipt-42') = :keyed_run AS same_run;
SELECT count(*) AS runs_with_key FROM sluice.runs WHERE idempotency_key = 'receipt-42';
-- Keys are per task.
SELECT sluice.enqueue('report', '{}', idempotency_key => 'receipt-42') <> :keyed_run AS other_task_other_run;

-- enqueue_many returns ids in input order.
SELECT array_length(sluice.enqueue_many('email', ARRAY['{"i": 1}', '{"i": 2}', '{"i": 3}']::jsonb[]), 1) AS many;
SELECT input FROM sluice.runs WHERE input ? 'i' ORDER BY id;
SELECT sluice.enqueue_many('email', ARRAY[]::jsonb[]) AS none;
SELECT ids[1] = ids[3] AS duplicate_key_same_id, ids[1] <> ids[2] AS other_key_other_id
FROM (SELECT sluice.enqueue_many('email', ARRAY['{"k": 1}', '{"k": 2}', '{"k": 3}']::jsonb[],
                                 idempotency_keys => ARRAY['a', 'b', 'a']) AS ids) s;
SELECT sluice.enqueue_many('email', ARRAY['{}', '{}']::jsonb[], delay => '5 minutes') AS delayed_ids \gset
SELECT count(*) AS delayed_many FROM sluice.runs r WHERE r.id = ANY (:'delayed_ids'::bigint[]) AND r.status = 'scheduled';
SELECT count(*) AS delayed_many_rows FROM sluice.delayed d WHERE d.run_id = ANY (:'delayed_ids'::bigint[]);

-- Bad input: each raises a clear error and leaves no run behind.
SELECT count(*) AS runs_before FROM sluice.runs \gset
SELECT sluice.enqueue('no-such-task', '{}');
SELECT sluice.enqueue('email', '[1, 2]');
SELECT sluice.enqueue('email', '"text"');
SELECT sluice.enqueue('email', NULL);
SELECT sluice.enqueue('email', '{}', metadata => '[]');
SELECT sluice.enqueue('email', '{"a": "\u0000"}');
SELECT sluice.enqueue('email', '{}', priority => 10);
SELECT sluice.enqueue('email', '{}', priority => -1);
SELECT sluice.enqueue('email', '{}', max_attempts => 0);
SELECT sluice.enqueue('email', '{}', delay => '-1 second');
SELECT sluice.enqueue('email', '{}', delay => '1 second', run_at => now());
SELECT sluice.enqueue('email', '{}', run_at => 'infinity');
SELECT sluice.enqueue('email', '{}', idempotency_key => '');
SELECT sluice.enqueue('email', jsonb_build_object('blob', repeat('x', 17 * 1024 * 1024)));
SELECT sluice.enqueue_many('email', ARRAY['{}', '3']::jsonb[]);
SELECT sluice.enqueue_many('email', ARRAY['{}', '{}']::jsonb[], idempotency_keys => ARRAY['x']);
SELECT count(*) = :runs_before AS no_run_added FROM sluice.runs;

-- A multi-megabyte input under the limit is accepted.
SELECT sluice.enqueue('email', jsonb_build_object('blob', repeat('x', 5 * 1024 * 1024))) > 0 AS large_input_accepted;

-- Bad task definitions.
SELECT sluice.define_task('bad name!');
SELECT sluice.define_task('t', max_attempts => -1);
SELECT sluice.define_task('t', max_attempts => 1000000);
SELECT sluice.define_task('t', backoff_factor => 1e300);
SELECT sluice.define_task('t', backoff_base => '-1 second');
SELECT sluice.define_task('t', backoff_base => '1 hour', backoff_max => '1 minute');
SELECT sluice.define_task('t', backoff_jitter => 2);
SELECT sluice.define_task('t', execution_timeout => '0');
SELECT sluice.define_task('t', queue => '');
SELECT count(*) AS bad_tasks_defined FROM sluice.tasks WHERE name IN ('t', 'bad name!');

-- Backoff: capped, never overflowing, jitter within bounds.
SELECT sluice.retry_delay(1, '1 second', 2, '1 hour', 0) AS first,
       sluice.retry_delay(4, '1 second', 2, '1 hour', 0) AS fourth,
       sluice.retry_delay(1000, '1 second', 2, '1 hour', 0) AS thousandth,
       sluice.retry_delay(1000, '1 second', 100, '1 day', 0) AS thousandth_steep,
       sluice.retry_delay(2147483647, '1 second', 2, '1 hour', 0) AS max_int;
SELECT bool_and(d BETWEEN '9 seconds' AND '11 seconds') AS jitter_within_ten_percent
FROM (SELECT sluice.retry_delay(1, '10 seconds', 2, '1 hour', 0.1) AS d FROM generate_series(1, 200)) s;

-- Queue depth.
SELECT queue, queued, scheduled, running FROM sluice.queue_depth ORDER BY queue;
