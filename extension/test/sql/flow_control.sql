-- Flow control: concurrency keys and their strategies, rate limits, slot
-- costs, affinity and the anti-starvation rule, under a moved clock.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

-- Bad rules are rejected with the value and what is allowed.
SELECT sluice.define_task('t', concurrency => '{"key": "$.user[", "max": 1}');
SELECT sluice.define_task('t', concurrency => '{"key": "$.user", "max": 0}');
SELECT sluice.define_task('t', concurrency => '{"key": "$.user", "max": -3}');
SELECT sluice.define_task('t', concurrency => '{"key": "$.user"}');
SELECT sluice.define_task('t', concurrency => '{"key": "$.user", "max": 1, "strategy": "fifo"}');
SELECT sluice.define_task('t', concurrency => '{"key": "", "max": 1}');
SELECT sluice.define_task('t', concurrency => '[1]');
SELECT sluice.define_task('t', rate_limits => '{"key": "missing"}');
SELECT sluice.define_task('t', rate_limits => '{"key": "$.user", "limit": 0, "period": "minute"}');
SELECT sluice.define_task('t', rate_limits => '{"key": "$.user", "limit": 5, "period": "week"}');
SELECT sluice.define_task('t', rate_limits => '{"key": "$.user", "limit": 5, "period": "minute", "units": 6}');
SELECT sluice.define_task('t', rate_limits => '{"key": "$.user", "limit": 5, "period": "minute", "units": -1}');
SELECT sluice.define_task('t', affinity => '{"label": "gpu", "op": "~", "value": "a100"}');
SELECT sluice.define_task('t', affinity => '{"label": "gpu", "value": [1]}');
SELECT sluice.define_task('t', slot_cost => 0);
SELECT sluice.set_rate_limit('api', 0, 'second');
SELECT sluice.set_rate_limit('api', 10, 'fortnight');
SELECT sluice.set_rate_limit('$.x', 10, 'second');
SELECT count(*) AS tasks_defined FROM sluice.tasks;

-- Group round-robin: one run per user at a time; the rest wait per key.
SELECT sluice.define_task('sync', concurrency => '{"key": "$.user", "max": 1}', backoff_base => '0');
SELECT sluice.register_worker('w', ARRAY['sync'], slots => 100) AS w \gset
SELECT sluice.enqueue('sync', '{"user": "ann", "n": 1}') AS ann1 \gset
SELECT sluice.enqueue('sync', '{"user": "ann", "n": 2}') AS ann2 \gset
SELECT sluice.enqueue('sync', '{"user": "ann", "n": 3}') AS ann3 \gset
SELECT sluice.enqueue('sync', '{"user": "bob", "n": 1}') AS bob1 \gset
SELECT input FROM sluice.claim(:'w', 10) ORDER BY run_id;
SELECT key, max_running, running, waiting FROM sluice.concurrency_status ORDER BY key;
SELECT count(*) AS held FROM sluice.held;
SELECT count(*) AS nothing_more FROM sluice.claim(:'w', 10);
-- A run without the key is bad input. The message names the document the
-- path reads.
SELECT sluice.enqueue('sync', '{"n": 4}');
SELECT sluice.define_task('tenant_sync', concurrency => '{"key": "$metadata.tenant", "max": 1}');
SELECT sluice.enqueue('tenant_sync', '{"tenant": "t1"}');
SELECT sluice.enqueue('tenant_sync', '{}', metadata => '{"tenant": "t1"}') > 0 AS metadata_key_accepted;
-- Completing ann's run hands her slot to her next run.
SELECT sluice.complete(:ann1, 1, '{}');
SELECT key, running, waiting FROM sluice.concurrency_status WHERE key = 'ann';
SELECT run_id = :ann2 AS next_of_ann FROM sluice.claim(:'w', 10);
-- A failure that retries frees the slot too. The slot goes to ann's third
-- run, and the retry queues behind it.
SELECT sluice.fail(:ann2, 1, 'flaky');
SELECT run_id = :ann3 AS ann3_started FROM sluice.claim(:'w', 10);
SELECT run_id = :ann2 AS retry_waits FROM sluice.held;
-- Cancelling a running run frees its slot at once.
SELECT sluice.cancel(:ann3);
SELECT run_id = :ann2 AS retry_started, attempt FROM sluice.claim(:'w', 10);

-- Fairness: a key with a thousand waiting runs does not delay another key.
SELECT count(*) FROM unnest(sluice.enqueue_many('sync',
    (SELECT array_agg(jsonb_build_object('user', 'big', 'n', i)) FROM generate_series(1, 1000) i))) AS ids;
SELECT sluice.enqueue('sync', '{"user": "small"}') AS small \gset
SELECT bool_or(run_id = :small) AS small_started_in_first_claim FROM sluice.claim(:'w', 3);
SELECT key, running, waiting FROM sluice.concurrency_status WHERE key IN ('big', 'small') ORDER BY key;

-- Raising a maximum lets held runs start: tick() hands the new slots over.
SELECT sluice.define_task('grow', concurrency => '{"key": "all", "max": 1}');
SELECT sluice.register_worker('gw', ARRAY['grow'], slots => 10) AS gw \gset
SELECT count(*) FROM unnest(sluice.enqueue_many('grow', array_fill('{}'::jsonb, ARRAY[3]))) AS ids;
SELECT count(*) AS started_with_max_1 FROM sluice.claim(:'gw', 10);
SELECT count(*) AS waiting FROM sluice.held WHERE task = 'grow';
SELECT sluice.define_task('grow', concurrency => '{"key": "all", "max": 3}');
SELECT released FROM sluice.tick();
SELECT count(*) AS started_with_max_3 FROM sluice.claim(:'gw', 10);
SELECT max_running, running, waiting FROM sluice.concurrency_status WHERE task = 'grow';

-- A lease that expires frees the slot: the next run of the key starts.
SELECT sluice.define_task('solo', concurrency => '{"key": "all", "max": 1}', backoff_base => '0', max_attempts => 1);
SELECT sluice.register_worker('crashy', ARRAY['solo'], lease_timeout => '10 seconds') AS crashy \gset
SELECT sluice.register_worker('other', ARRAY['solo'], lease_timeout => '1 hour') AS other \gset
SELECT sluice.enqueue('solo', '{}') AS solo1 \gset
SELECT sluice.enqueue('solo', '{}') AS solo2 \gset
SELECT run_id = :solo1 AS crashy_took_first FROM sluice.claim(:'crashy', 5);
SELECT count(*) AS blocked FROM sluice.claim(:'other', 5);
SET sluice.clock_offset = '20 seconds';
SELECT sluice.heartbeat(:'other');
SELECT expired FROM sluice.tick();
SELECT run_id = :solo2 AS next_started FROM sluice.claim(:'other', 5);
SELECT status FROM sluice.runs WHERE id = :solo1;
RESET sluice.clock_offset;

-- Several rules: a run starts only when every key admits it.
SELECT sluice.define_task('pair', concurrency => '[{"key": "$.a", "max": 1}, {"key": "$.b", "max": 2}]');
SELECT sluice.register_worker('pw', ARRAY['pair'], slots => 10) AS pw \gset
SELECT sluice.enqueue('pair', '{"a": 1, "b": 1}') AS p1 \gset
SELECT sluice.enqueue('pair', '{"a": 1, "b": 2}') AS p2 \gset
SELECT sluice.enqueue('pair', '{"a": 2, "b": 1}') AS p3 \gset
SELECT sluice.enqueue('pair', '{"a": 3, "b": 1}') AS p4 \gset
SELECT array_agg(run_id ORDER BY run_id) = ARRAY[:p1, :p3]::bigint[] AS a_and_b_respected FROM sluice.claim(:'pw', 10);
SELECT rule, key, running, waiting FROM sluice.concurrency_status WHERE task = 'pair' ORDER BY rule, key;

-- cancel_in_progress: a new run cancels the oldest live run of the key.
SELECT sluice.define_task('debounce', concurrency => '{"key": "$.doc", "max": 1, "strategy": "cancel_in_progress"}');
SELECT sluice.enqueue('debounce', '{"doc": 7}') AS d1 \gset
SELECT sluice.enqueue('debounce', '{"doc": 7}') AS d2 \gset
SELECT sluice.enqueue('debounce', '{"doc": 8}') AS d3 \gset
SELECT id = :d1 AS is_d1, status,
       error ->> 'message' = format('cancelled by newer run %s of the same concurrency key', :d2) AS names_newer_run
FROM sluice.runs WHERE id IN (:d1, :d2, :d3) ORDER BY id;

-- cancel_newest: a new run for a full key is created cancelled.
SELECT sluice.define_task('once', concurrency => '{"key": "$.doc", "max": 1, "strategy": "cancel_newest"}');
SELECT sluice.enqueue('once', '{"doc": 7}') AS o1 \gset
SELECT sluice.enqueue('once', '{"doc": 7}') AS o2 \gset
SELECT id = :o1 AS is_first, status FROM sluice.runs WHERE id IN (:o1, :o2) ORDER BY id;

-- Rate limits: a static bucket of 2 per second.
SELECT sluice.set_rate_limit('api', 2, 'second');
SELECT sluice.define_task('call', rate_limits => '{"key": "api"}');
SELECT sluice.register_worker('rw', ARRAY['call'], slots => 100, lease_timeout => '1 day') AS rw \gset
SELECT count(*) FROM unnest(sluice.enqueue_many('call', array_fill('{}'::jsonb, ARRAY[6]))) AS ids;
SELECT count(*) AS started_at_once FROM sluice.claim(:'rw', 100);
SELECT key, max_units, waiting FROM sluice.rate_limit_status;
SELECT next_due_at - sluice.now() BETWEEN '0.4 seconds' AND '0.6 seconds' AS next_refill_due FROM sluice.tick();
SET sluice.clock_offset = '1 second';
SELECT released FROM sluice.tick();
SELECT count(*) AS started_after_one_second FROM sluice.claim(:'rw', 100);
-- Lowering the limit applies to runs already waiting.
SELECT sluice.set_rate_limit('api', 1, 'second');
SET sluice.clock_offset = '2 seconds';
SELECT released FROM sluice.tick();
SELECT count(*) AS started_at_new_rate FROM sluice.claim(:'rw', 100);
-- A paused limit admits nothing until its time.
SELECT sluice.pause_rate_limit('api', sluice.now() + interval '1 minute');
SET sluice.clock_offset = '10 seconds';
SELECT released FROM sluice.tick();
SELECT count(*) AS started_while_paused FROM sluice.claim(:'rw', 100);
SELECT sluice.resume_rate_limit('api');
SELECT released FROM sluice.tick();
SELECT count(*) AS started_after_resume FROM sluice.claim(:'rw', 100);
SELECT sluice.pause_rate_limit('nope', now());
RESET sluice.clock_offset;

-- Dynamic limits with units from the input.
SELECT sluice.define_task('spend', rate_limits => '{"key": "$.account", "limit": 10, "period": "minute", "units": "$.cost"}');
SELECT sluice.register_worker('sw', ARRAY['spend'], slots => 100) AS sw \gset
SELECT sluice.enqueue('spend', '{"account": "a", "cost": 6}') AS s1 \gset
SELECT sluice.enqueue('spend', '{"account": "a", "cost": 6}') AS s2 \gset
SELECT sluice.enqueue('spend', '{"account": "b", "cost": 6}') AS s3 \gset
SELECT array_agg(run_id ORDER BY run_id) = ARRAY[:s1, :s3]::bigint[] AS one_per_account FROM sluice.claim(:'sw', 10);
SELECT sluice.enqueue('spend', '{"account": "a", "cost": 11}');
SELECT sluice.enqueue('spend', '{"account": "a"}');
SELECT sluice.enqueue('spend', '{"account": "a", "cost": "lots"}');
-- A bucket admits runs in claim order while its tokens last. A run that
-- needs more than is left also holds back the smaller runs behind it.
SELECT sluice.enqueue('spend', '{"account": "c", "cost": 6}') AS c1 \gset
SELECT sluice.enqueue('spend', '{"account": "c", "cost": 5}') AS c2 \gset
SELECT sluice.enqueue('spend', '{"account": "c", "cost": 4}') AS c3 \gset
SELECT array_agg(run_id ORDER BY run_id) = ARRAY[:c1]::bigint[] AS first_run_only FROM sluice.claim(:'sw', 10);
SELECT array_agg(run_id ORDER BY run_id) = ARRAY[:c2, :c3]::bigint[] AS both_held, min(kind) AS kind
FROM sluice.held WHERE gate_key = 'c';
SELECT key, waiting, round(available_units) AS available_units FROM sluice.rate_limit_status WHERE key = 'c';
-- The same order across the rounds of one claim. With room for two runs, the
-- first round starts e1 and moves e2 to sluice.held, and the second round
-- must move e3 there too.
SELECT sluice.enqueue('spend', '{"account": "e", "cost": 6}') AS e1 \gset
SELECT sluice.enqueue('spend', '{"account": "e", "cost": 5}') AS e2 \gset
SELECT sluice.enqueue('spend', '{"account": "e", "cost": 4}') AS e3 \gset
SELECT array_agg(run_id ORDER BY run_id) = ARRAY[:e1]::bigint[] AS first_run_only FROM sluice.claim(:'sw', 2);
SELECT array_agg(run_id ORDER BY run_id) = ARRAY[:e2, :e3]::bigint[] AS both_held FROM sluice.held WHERE gate_key = 'e';
-- The same order when a run has several gates and the claim checks run by run.
SELECT sluice.define_task('spend_keyed', concurrency => '{"key": "$.account", "max": 10}',
                          rate_limits => '{"key": "$.account", "limit": 10, "period": "minute", "units": "$.cost"}');
SELECT sluice.register_worker('kw', ARRAY['spend_keyed'], slots => 100) AS kw \gset
SELECT count(*) FROM unnest(sluice.enqueue_many('spend_keyed', ARRAY['{"account": "d", "cost": 6}',
    '{"account": "d", "cost": 5}', '{"account": "d", "cost": 4}']::jsonb[])) AS ids;
SELECT array_agg(input ->> 'cost') AS started FROM sluice.claim(:'kw', 10);
SELECT array_agg(kind ORDER BY run_id) AS held_by FROM sluice.held WHERE task = 'spend_keyed';
SELECT key, running FROM sluice.concurrency_status WHERE task = 'spend_keyed';

-- Slot cost: a heavy run occupies several slots of one worker.
SELECT sluice.define_task('heavy', slot_cost => 3);
SELECT sluice.define_task('light');
SELECT sluice.register_worker('hw', ARRAY['heavy', 'light'], slots => 4) AS hw \gset
SELECT sluice.enqueue('heavy', '{}') AS h1 \gset
SELECT sluice.enqueue('heavy', '{}') AS h2 \gset
SELECT sluice.enqueue('light', '{}') AS l1 \gset
SELECT sluice.enqueue('light', '{}') AS l2 \gset
SELECT array_agg(run_id ORDER BY run_id) = ARRAY[:h1, :l1]::bigint[] AS heavy_and_one_light FROM sluice.claim(:'hw', 10);
SELECT count(*) AS full_worker FROM sluice.claim(:'hw', 10);
SELECT running FROM sluice.worker_status WHERE id = :'hw';

-- Affinity: required labels filter; weights prefer the best worker.
SELECT sluice.define_task('render', backoff_base => '0', affinity => '[{"label": "gpu", "value": "a100", "required": true},
                                                   {"label": "memory_gb", "op": ">=", "value": 64, "weight": 5}]');
SELECT sluice.register_worker('cpu', ARRAY['render'], labels => '{"memory_gb": 128}') AS cpu \gset
SELECT sluice.register_worker('small-gpu', ARRAY['render'], labels => '{"gpu": "a100", "memory_gb": 32}') AS small_gpu \gset
SELECT sluice.register_worker('big-gpu', ARRAY['render'], labels => '{"gpu": "a100", "memory_gb": 96}') AS big_gpu \gset
SELECT sluice.enqueue('render', '{}') AS r1 \gset
SELECT count(*) AS cpu_never FROM sluice.claim(:'cpu', 5);
SELECT count(*) AS small_gpu_defers FROM sluice.claim(:'small_gpu', 5);
SELECT run_id = :r1 AS big_gpu_takes_it FROM sluice.claim(:'big_gpu', 5);
-- With the best worker gone, the next best takes the work.
SELECT sluice.stop_worker(:'big_gpu');
SELECT run_id = :r1 AS small_gpu_takes_retry FROM sluice.claim(:'small_gpu', 5);
-- Labels can change while a worker runs.
SELECT sluice.set_worker_labels(:'cpu', '{"gpu": "a100", "memory_gb": 128}');
SELECT sluice.enqueue('render', '{}') AS r2 \gset
SELECT run_id = :r2 AS relabelled_cpu_takes_it FROM sluice.claim(:'cpu', 5);
SELECT sluice.set_worker_labels(:'cpu', '{"gpu": [1]}');

-- Priorities: one claim in ten starts with the oldest run, so a flood of
-- urgent runs cannot starve an old low-priority one.
SELECT sluice.define_task('mixed');
SELECT sluice.register_worker('mw', ARRAY['mixed'], slots => 1000) AS mw \gset
SELECT sluice.enqueue('mixed', '{"low": true}', priority => 0) AS low \gset
SELECT count(*) FROM unnest(sluice.enqueue_many('mixed', array_fill('{}'::jsonb, ARRAY[50]), priority => 9)) AS ids;
SELECT bool_or(c.run_id = :low) AS low_started_within_ten_claims
FROM generate_series(1, 10) i CROSS JOIN LATERAL sluice.claim(:'mw', 1 + 0 * i) c;
-- The claim that starts with the oldest run still returns at most max_runs:
-- the oldest run takes one of the places, it does not add one.
SELECT count(*) FROM unnest(sluice.enqueue_many('mixed', array_fill('{}'::jsonb, ARRAY[20]), priority => 9)) AS ids;
SELECT pg_catalog.setval('sluice.claim_seq', 9);
SELECT count(*) AS claimed FROM sluice.claim(:'mw', 5) c;

-- After a claim has locked gate rows, a later queue's gated run whose key has
-- no slot row yet is not started: creating the row could wait for another
-- transaction. The claim stops there, and the next claim creates the row.
SELECT sluice.set_rate_limit('closed', 5, 'hour');
SELECT sluice.pause_rate_limit('closed', sluice.now() + interval '1 hour');
SELECT sluice.define_task('first_queue_task', queue => 'qa', rate_limits => '{"key": "closed"}');
SELECT sluice.define_task('second_queue_task', queue => 'qb', concurrency => '{"key": "fresh", "max": 1}');
SELECT sluice.register_worker('qw', ARRAY['first_queue_task', 'second_queue_task'], slots => 10,
                              queues => ARRAY['qa', 'qb']) AS qw \gset
SELECT sluice.enqueue('first_queue_task', '{}') AS qa1 \gset
SELECT sluice.enqueue('second_queue_task', '{}') AS qb1 \gset
SELECT count(*) AS started_in_first_claim FROM sluice.claim(:'qw', 10);
SELECT count(*) AS fresh_slot_rows FROM sluice.concurrency_slots WHERE key = 'fresh';
SELECT array_agg(run_id) = ARRAY[:qb1]::bigint[] AS second_claim_starts_it FROM sluice.claim(:'qw', 10);

-- A run keeps the gates it was enqueued with until it finishes, whatever
-- the task's definition is by then. A newer deploy drops the concurrency
-- rule while run 1 holds the key's only slot. Its failure gives the slot to
-- the held run 2, its retry waits for the key like any gated run, and each
-- completion hands the slot on, until both runs finish with no slot or gate
-- left behind.
SELECT sluice.define_task('redeployed', backoff_base => '0', concurrency => '{"key": "$.k", "max": 1}');
SELECT sluice.register_worker('dw', ARRAY['redeployed'], slots => 10) AS dw \gset
SELECT sluice.enqueue('redeployed', '{"k": "x"}') AS d1 \gset
SELECT sluice.enqueue('redeployed', '{"k": "x"}') AS d2 \gset
SELECT array_agg(run_id) = ARRAY[:d1]::bigint[] AS first_starts FROM sluice.claim(:'dw', 10);
SELECT sluice.define_task('redeployed', backoff_base => '0');
SELECT sluice.fail(:d1, 1, 'flaky') AS first_retried;
SELECT array_agg(run_id) = ARRAY[:d2]::bigint[] AS second_starts_alone FROM sluice.claim(:'dw', 10);
SELECT sluice.complete(:d2, 1, '{}') AS second_completed;
SELECT array_agg(run_id || ':' || attempt) = ARRAY[:d1 || ':2'] AS retry_starts FROM sluice.claim(:'dw', 10);
SELECT sluice.complete(:d1, 2, '{}') AS first_completed;
SELECT running AS slot_in_use FROM sluice.concurrency_slots WHERE key = 'x';
SELECT count(*) AS gates_left FROM sluice.run_gates g WHERE g.run_id IN (:d1, :d2);

-- A shed copies the live leases with their gated flag, so a completion
-- after it still hands the key's slot to the held run.
SELECT sluice.define_task('shed_keyed', concurrency => '{"key": "k", "max": 1}');
SELECT sluice.register_worker('shw', ARRAY['shed_keyed'], slots => 10) AS shw \gset
SELECT sluice.enqueue('shed_keyed', '{}') AS sh1 \gset
SELECT sluice.enqueue('shed_keyed', '{}') AS sh2 \gset
SELECT array_agg(run_id) = ARRAY[:sh1]::bigint[] AS first_starts FROM sluice.claim(:'shw', 10);
SELECT sluice.shed_dead_rows(min_dead => 0, min_snapshot_age => 0) AS shed;
SELECT gated AS lease_still_gated FROM sluice.leases WHERE run_id = :sh1;
SELECT sluice.complete(:sh1, 1, '{}') AS completed;
SELECT array_agg(run_id) = ARRAY[:sh2]::bigint[] AS held_run_starts FROM sluice.claim(:'shw', 10);

-- A gated run whose rule a deploy removed before any claim of its key gets
-- a slot row without a limit. It starts, and the claims of its worker do
-- not fail for every other task.
SELECT sluice.define_task('dropped_rule', concurrency => '{"key": "k", "max": 1}');
SELECT sluice.define_task('beside');
SELECT sluice.register_worker('drw', ARRAY['dropped_rule', 'beside'], slots => 10) AS drw \gset
SELECT sluice.enqueue('dropped_rule', '{}') AS dr1 \gset
SELECT sluice.define_task('dropped_rule');
SELECT sluice.enqueue('beside', '{}') AS bs1 \gset
SELECT array_agg(run_id ORDER BY run_id) = ARRAY[:dr1, :bs1]::bigint[] AS both_start FROM sluice.claim(:'drw', 10);
SELECT max_running FROM sluice.concurrency_slots WHERE task = 'dropped_rule';

-- A claim gives back what it took for a run it admitted and then did not
-- start, which happens only when the run left the queued state while its
-- ready row remained. The update of sluice.runs below makes that state by
-- hand. The claim returns the bucket's tokens after the one-pass admission
-- of single-gate runs (rate_only, claimed alone), and both the key's slot
-- and the tokens after the run-by-run admission (keyed_and_rated).
SELECT sluice.set_rate_limit('give_back', 10, 'hour');
SELECT sluice.define_task('rate_only', rate_limits => '{"key": "give_back"}');
SELECT sluice.define_task('keyed_and_rated', concurrency => '{"key": "gb", "max": 1}',
                          rate_limits => '{"key": "give_back", "units": 3}');
SELECT sluice.register_worker('gbs', ARRAY['rate_only'], slots => 10) AS gbs \gset
SELECT sluice.register_worker('gbm', ARRAY['keyed_and_rated'], slots => 10) AS gbm \gset
SELECT sluice.enqueue('rate_only', '{}') AS gb1 \gset
SELECT sluice.enqueue('keyed_and_rated', '{}') AS gb2 \gset
UPDATE sluice.runs SET status = 'cancelled' WHERE id IN (:gb1, :gb2);
SELECT count(*) AS started FROM sluice.claim(:'gbs', 10);
SELECT round(tokens) AS tokens_back_single FROM sluice.rate_limits WHERE key = 'give_back';
SELECT count(*) AS started FROM sluice.claim(:'gbm', 10);
SELECT running AS slot_in_use FROM sluice.concurrency_slots WHERE key = 'gb';
SELECT round(tokens) AS tokens_back_several FROM sluice.rate_limits WHERE key = 'give_back';
