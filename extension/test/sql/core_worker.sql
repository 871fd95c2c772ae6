-- The worker protocol: register, claim, complete, fail, heartbeat, stop,
-- cancel, and the coordinator's time-driven work under a moved clock.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

SELECT sluice.define_task('email', max_attempts => 3, backoff_base => '10 seconds', backoff_jitter => 0,
                          execution_timeout => '1 minute');
SELECT sluice.define_task('import', queue => 'imports', max_attempts => 2, backoff_base => '0');
SELECT sluice.define_task('unclaimed', queue => 'imports');

SELECT sluice.register_worker('w1', ARRAY['email', 'import'], slots => 4, lease_timeout => '30 seconds') AS w1 \gset
SELECT name, slots, queues, tasks FROM sluice.workers WHERE id = :'w1';

-- Registration errors.
SELECT sluice.register_worker('w2', ARRAY['no-such-task']);
SELECT sluice.register_worker('w2', ARRAY[]::text[]);
SELECT sluice.register_worker('w2', ARRAY['email'], slots => 0);
SELECT sluice.register_worker('w2', ARRAY['email'], lease_timeout => '0');
SELECT sluice.register_worker('w2', ARRAY['email'], queues => ARRAY[]::text[]);
SELECT sluice.define_task('costly', slot_cost => 3);
SELECT sluice.register_worker('w2', ARRAY['email', 'costly'], slots => 2);

-- Claim order: higher priority first, then oldest; only the worker's tasks.
SELECT sluice.enqueue('email', '{"n": 1}') AS e1 \gset
SELECT sluice.enqueue('email', '{"n": 2}', priority => 3) AS e2 \gset
SELECT sluice.enqueue('email', '{"n": 3}') AS e3 \gset
SELECT sluice.enqueue('unclaimed', '{}') AS u1 \gset
SELECT run_id = :e2 AS urgent_first, attempt, input FROM sluice.claim(:'w1', 1);
SELECT array_agg(run_id ORDER BY run_id) = ARRAY[:e1, :e3]::bigint[] AS then_oldest FROM sluice.claim(:'w1', 10);
SELECT count(*) AS nothing_left FROM sluice.claim(:'w1', 10);
SELECT status FROM sluice.runs WHERE id = :u1;
SELECT count(*) AS leases FROM sluice.leases WHERE worker_id = :'w1';
SELECT count(*) AS ready_left FROM sluice.ready;

-- Completion is accepted once, for the attempt that holds the run.
SELECT sluice.complete(:e2, 1, '{"sent": true}') AS accepted;
SELECT sluice.complete(:e2, 1, '{"sent": "again"}') AS accepted_twice;
SELECT sluice.complete(:e1, 2, '{}') AS wrong_attempt;
SELECT status, output, attempt FROM sluice.runs WHERE id = :e2;
-- A batch may name a run twice: the output of the attempt whose lease is current wins.
SELECT * FROM sluice.complete(ARRAY[:e1, :e1, :e3]::bigint[], ARRAY[2, 1, 1], ARRAY['"stale"', '1', NULL]::jsonb[])
ORDER BY 1;
SELECT id = :e1 AS is_e1, status, output FROM sluice.runs WHERE id IN (:e1, :e3) ORDER BY id;
SELECT sluice.complete(ARRAY[1]::bigint[], ARRAY[1, 2], ARRAY['{}']::jsonb[]);

-- A retryable failure schedules a retry after the backoff; the coordinator
-- promotes it when its time comes.
SELECT sluice.enqueue('email', '{"n": 4}') AS e4 \gset
SELECT count(*) FROM sluice.claim(:'w1', 1);
SELECT sluice.fail(:e4, 1, 'smtp timeout') AS status_after_failure;
SELECT sluice.fail(:e4, 1, 'again') AS second_report;
SELECT status, error ->> 'message' AS message, run_at - sluice.now() BETWEEN '9 seconds' AND '11 seconds' AS backoff
FROM sluice.runs WHERE id = :e4;
SELECT promoted FROM sluice.tick();
SET sluice.clock_offset = '11 seconds';
SELECT promoted FROM sluice.tick();
SELECT status FROM sluice.runs WHERE id = :e4;
SELECT attempt FROM sluice.claim(:'w1', 1);
-- A non-retryable failure fails at once.
SELECT sluice.fail(:e4, 2, 'invalid address', retryable => false) AS status_after_fatal;
SELECT status, error FROM sluice.runs WHERE id = :e4;
SELECT attempt, error ->> 'message' AS message FROM sluice.attempt_errors WHERE run_id = :e4 ORDER BY attempt;

-- Without backoff a retry is queued at once; the last attempt fails the run.
SELECT sluice.enqueue('import', '{}') AS i1 \gset
SELECT count(*) FROM sluice.claim(:'w1', 1);
SELECT sluice.fail(:i1, 1, 'first') AS first_failure;
SELECT count(*) FROM sluice.claim(:'w1', 1);
SELECT sluice.fail(:i1, 2, 'second') AS last_failure;
-- A NUL-free but long error message is stored, cut at 1 MiB.
SELECT sluice.enqueue('import', '{}') AS i2 \gset
SELECT count(*) FROM sluice.claim(:'w1', 1);
SELECT sluice.fail(:i2, 1, repeat('e', 2 * 1024 * 1024), retryable => false);
SELECT length(error ->> 'message') < 300000 AS cut, error ->> 'message' LIKE '%[truncated from 2097152 bytes]' AS noted
FROM sluice.runs WHERE id = :i2;

-- Heartbeat returns the runs the worker no longer holds.
SELECT sluice.enqueue('email', '{"n": 5}') AS e5 \gset
SELECT count(*) FROM sluice.claim(:'w1', 1);
SELECT array_agg(h ORDER BY h) = ARRAY[:e1]::bigint[] AS lost FROM sluice.heartbeat(:'w1', ARRAY[:e1, :e5]::bigint[]) AS h;

-- Cancel: a running run is cancelled at once and its worker notified; a
-- late completion is rejected; finished runs cannot be cancelled.
SELECT sluice.cancel(:e5, 'user asked') AS cancelled;
SELECT status, error ->> 'message' AS reason FROM sluice.runs WHERE id = :e5;
SELECT sluice.complete(:e5, 1, '{}') AS late_completion;
SELECT status FROM sluice.runs WHERE id = :e5;
SELECT sluice.cancel(:e5) AS cancelled_again;
SELECT sluice.cancel(:e2) AS cancel_succeeded_run;
SELECT sluice.cancel(999999) AS unknown;
SELECT sluice.enqueue('email', '{}', delay => '1 hour') AS e6 \gset
SELECT sluice.cancel(:e6) AS cancel_scheduled;
SELECT count(*) AS delayed_rows FROM sluice.delayed WHERE run_id = :e6;

-- Execution timeout: the attempt is taken back after its deadline.
SELECT sluice.enqueue('email', '{"n": 7}') AS e7 \gset
SELECT count(*) FROM sluice.claim(:'w1', 1);
SELECT sluice.heartbeat(:'w1');
SELECT expired FROM sluice.tick();
SET sluice.clock_offset = '1 minute 12 seconds';
SELECT sluice.heartbeat(:'w1');
SELECT expired FROM sluice.tick();
SELECT status, attempt, error ->> 'kind' AS kind, error ->> 'message' AS message FROM sluice.runs WHERE id = :e7;

-- A silent worker is stopped and its runs are retried; its late calls are
-- rejected with SL005.
SET sluice.clock_offset = '1 minute 30 seconds';
SELECT promoted FROM sluice.tick();
SELECT count(*) FROM sluice.claim(:'w1', 1);
SET sluice.clock_offset = '3 minutes';
SELECT expired FROM sluice.tick();
SELECT status, attempt, error ->> 'kind' AS kind FROM sluice.runs WHERE id = :e7;
SELECT stopped_at IS NOT NULL AS stopped, stop_reason LIKE 'no heartbeat since%' AS reason FROM sluice.workers WHERE id = :'w1';
\set VERBOSITY sqlstate
SELECT sluice.heartbeat(:'w1');
SELECT * FROM sluice.claim(:'w1', 1);
\set VERBOSITY default
SELECT sluice.heartbeat('00000000-0000-0000-0000-000000000000');
-- Claims check the worker and the batch size inline and raise through the
-- same functions.
SELECT * FROM sluice.claim('00000000-0000-0000-0000-000000000000', 1);
SELECT sluice.register_worker('checks', ARRAY['email'], slots => 1) AS wc \gset
SELECT * FROM sluice.claim(:'wc', 0);
SELECT * FROM sluice.claim(:'wc', NULL);
SELECT * FROM sluice.claim(:'wc', 10001);
DELETE FROM sluice.workers WHERE id = :'wc';

-- A worker restarted under the same name is a new incarnation.
SELECT sluice.register_worker('w1', ARRAY['email', 'import'], slots => 4) AS w1b \gset
SELECT :'w1b' <> :'w1' AS new_incarnation, count(*) AS rows_named_w1 FROM sluice.workers WHERE name = 'w1';

-- A graceful stop sends held runs back at once.
SET sluice.clock_offset = '4 minutes';
SELECT count(*) AS lost FROM sluice.heartbeat(:'w1b');
SELECT promoted FROM sluice.tick();
SELECT run_id = :e7 AS reclaimed, attempt FROM sluice.claim(:'w1b', 1);
SELECT sluice.stop_worker(:'w1b') AS released;
SELECT status, error ->> 'kind' AS kind FROM sluice.runs WHERE id = :e7;

-- Schedule timeout: a queued run nobody starts in time fails.
SELECT sluice.define_task('slow-queue', schedule_timeout => '30 seconds');
SELECT sluice.enqueue('slow-queue', '{}') AS s1 \gset
SELECT timed_out FROM sluice.tick();
SET sluice.clock_offset = '4 minutes 31 seconds';
SELECT timed_out FROM sluice.tick();
SELECT status, error ->> 'kind' AS kind FROM sluice.runs WHERE id = :s1;

-- next_due_at tracks the earliest timer.
SELECT sluice.enqueue('email', '{}', delay => '10 minutes') AS e8 \gset
SELECT next_due_at = (SELECT run_at FROM sluice.runs WHERE id = :e8) AS next_is_delayed_run FROM sluice.tick();

-- Watching a run and reading its result.
SELECT sluice.watch_run(:e8) AS watched_status;
SELECT * FROM sluice.run_result(:e2);
SELECT * FROM sluice.run_result(424242);
SELECT sluice.watch_run(424242);

SELECT event FROM sluice.run_timeline WHERE run_id = :e4 ORDER BY at, event;
SELECT name, running, state FROM sluice.worker_status ORDER BY started_at;

-- The hot-path functions never JIT-compile: their plans are estimated from the
-- size of the whole history and would pass jit_above_cost on a large one. The
-- worker's calls keep one generic plan per statement instead of planning again.
-- The count of a worker's slots in use always reads the worker's index entries,
-- and a completion finds each lease through the index.
SELECT p.oid::regprocedure AS function, coalesce('jit=off' = ANY (p.proconfig), false) AS jit_off,
       coalesce('plan_cache_mode=force_generic_plan' = ANY (p.proconfig), false) AS generic_plans,
       coalesce('enable_seqscan=off' = ANY (p.proconfig), false) AS no_seqscan
FROM pg_proc p
WHERE p.pronamespace = 'sluice'::regnamespace
  AND p.proname IN ('claim', 'complete', 'fail', 'heartbeat', 'cancel', 'enqueue_many', 'promote_due',
                    'expire_leases', 'expire_queued', 'fire_due_schedules', '_slots_in_use')
  AND (p.proname NOT IN ('complete', 'fail') OR p.proargtypes[0] = 'bigint[]'::regtype)
ORDER BY 1::text;

-- Worker calls need READ COMMITTED: a call that waited for
-- sluice.shed_dead_rows under an older snapshot would miss the rows it copied.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT sluice.complete(1, 1);
ROLLBACK;

-- A task or queue listed twice is kept once, in the order first given. Kept
-- twice, a claim would read that task's runs twice and start half as many as
-- it could.
SELECT sluice.register_worker('twice', ARRAY['email', 'import', 'email'],
                              queues => ARRAY['imports', 'default', 'imports'], slots => 4) AS twice \gset
SELECT tasks, queues FROM sluice.workers WHERE id = :'twice';
SELECT count(*) FROM unnest(sluice.enqueue_many('email', array_fill('{}'::jsonb, ARRAY[4]))) AS ids;
SELECT count(*) AS claimed_all_four FROM sluice.claim(:'twice', 4);
