-- Worker side: registration, claiming, completing, failing, heartbeats.
--
-- A worker registers once per process start and gets a new incarnation id.
-- It claims up to its free slots, heartbeats while it runs, and reports each
-- attempt with complete or fail. Every report names the run and the attempt
-- it executed: the attempt number is the fencing token, so a report for an
-- attempt that no longer holds the run (it expired, was cancelled, or was
-- claimed again) changes nothing and is answered as rejected.

-- Raises SL005 for a worker incarnation that is unknown or stopped.
CREATE FUNCTION sluice._live_worker(p_worker_id uuid) RETURNS sluice.workers
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_worker sluice.workers;
BEGIN
    SELECT * INTO v_worker FROM sluice.workers WHERE id = p_worker_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'worker % is not registered', coalesce(p_worker_id::text, 'NULL')
            USING ERRCODE = 'SL005', HINT = 'Register the worker with sluice.register_worker() first.';
    END IF;
    IF v_worker.stopped_at IS NOT NULL THEN
        RAISE EXCEPTION 'worker % (%) was stopped', p_worker_id, v_worker.name
            USING ERRCODE = 'SL005',
                  DETAIL = format('The reason given: %s. Its runs were released when it stopped.',
                                  v_worker.stop_reason),
                  HINT = 'Register again with sluice.register_worker() to get a new worker id.';
    END IF;
    RETURN v_worker;
END
$$;

-- Returns p_names with each name kept once, at its first position.
CREATE FUNCTION sluice._distinct_in_order(p_names text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$
    SELECT ARRAY(SELECT u.name FROM unnest(p_names) WITH ORDINALITY AS u(name, n)
                 GROUP BY u.name ORDER BY min(u.n))
$$;

CREATE FUNCTION sluice.register_worker(
    name          text,
    tasks         text[],
    slots         integer DEFAULT 10,
    queues        text[] DEFAULT NULL,
    labels        jsonb DEFAULT '{}',
    lease_timeout interval DEFAULT '30 seconds',
    hostname      text DEFAULT NULL,
    pid           integer DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql
AS $$
DECLARE
    v_task text;
    v_slot_cost integer;
    v_tasks text[];
    v_queues text[];
    v_id uuid;
    v_now timestamptz := sluice.now();
BEGIN
    PERFORM sluice._check_name('worker name', register_worker.name);
    PERFORM sluice._check_range('slots', register_worker.slots, 1, 100000);
    PERFORM sluice._check_interval('lease_timeout', register_worker.lease_timeout, '1 second', '1 day');
    PERFORM sluice._check_payload('labels', register_worker.labels, true);
    IF coalesce(pg_catalog.cardinality(register_worker.tasks), 0) = 0 THEN
        PERFORM sluice._invalid_option('tasks', 'an empty list', 'A worker runs at least one task.');
    END IF;
    IF pg_catalog.cardinality(register_worker.queues) = 0 THEN
        PERFORM sluice._invalid_option('queues', 'an empty list',
                                       'A worker claims from at least one queue. Pass NULL to claim from the queues of its tasks.');
    END IF;
    FOREACH v_task IN ARRAY register_worker.tasks LOOP
        v_slot_cost := (sluice._task(v_task)).slot_cost;
        IF v_slot_cost > register_worker.slots THEN
            RAISE EXCEPTION 'worker % has % slots, fewer than the slot cost % of task %',
                            pg_catalog.quote_literal(register_worker.name), register_worker.slots, v_slot_cost,
                            pg_catalog.quote_literal(v_task)
                USING ERRCODE = 'SL004',
                      DETAIL = 'A worker needs at least as many slots as the slot cost of each of its tasks.',
                      HINT = format('Register the worker with slots => %s or more.', v_slot_cost);
        END IF;
    END LOOP;

    -- A name listed twice would make claims read that task's runs twice.
    v_tasks := sluice._distinct_in_order(register_worker.tasks);
    IF register_worker.queues IS NULL THEN
        v_queues := (SELECT pg_catalog.array_agg(DISTINCT t.queue ORDER BY t.queue)
                     FROM sluice.tasks t WHERE t.name = ANY (v_tasks));
    ELSE
        v_queues := sluice._distinct_in_order(register_worker.queues);
    END IF;

    INSERT INTO sluice.workers (name, hostname, pid, slots, queues, tasks, labels, lease_timeout,
                                started_at, heartbeat_at)
    VALUES (register_worker.name, register_worker.hostname, register_worker.pid, register_worker.slots,
            v_queues, v_tasks, register_worker.labels, register_worker.lease_timeout,
            v_now, v_now)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION sluice.register_worker(text, text[], integer, text[], jsonb, interval, text, integer) IS
    'Registers a worker process incarnation and returns its new id. tasks must be defined; queues default to '
    'the queues of those tasks; lease_timeout is how long the worker may go without a heartbeat before its runs '
    'are taken back. slots must cover the slot_cost of every task, queues when given must not be empty, and a '
    'task or queue listed twice is kept once.';

CREATE TYPE sluice._claim_candidate AS (run_id bigint, gated boolean, slot_cost integer);

-- Raises an error for a worker call outside READ COMMITTED. Each statement
-- of the worker functions must read what committed before it. After waiting
-- for sluice.shed_dead_rows, a statement under an older snapshot finds
-- neither the truncated ready and lease rows nor their copies: a completion
-- was rejected and a claim went over the worker's slots.
CREATE FUNCTION sluice._require_read_committed(p_function text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'sluice.% needs isolation level read committed, not %', p_function,
                    pg_catalog.current_setting('transaction_isolation')
        USING ERRCODE = 'invalid_transaction_state',
              HINT = 'Call it outside a transaction block, with default_transaction_isolation set to read committed.';
END
$$;

-- Returns the slot cost of the runs leased to worker p_worker_id. A claim
-- counts its own worker's slots inline with the same query, and calls this
-- function for the other workers when it weighs affinity. Completions leave
-- dead leases behind faster than vacuum removes them. With statistics that
-- had seen a single worker, the planner read the whole leases table instead
-- of the worker's index entries: 0.35 ms of a 1.3 ms claim at 15,000
-- runs/s. A plain index scan also marks the dead entries it passes, so that
-- the next claim skips them, and a bitmap scan does not, so sequential and
-- bitmap scans are both off. The function is volatile so that
-- its query takes a snapshot after its lock. A stable one reads with the
-- caller's snapshot: after waiting for sluice.shed_dead_rows it saw neither
-- the truncated leases nor their copies, so a claim went over the worker's
-- slots.
CREATE FUNCTION sluice._slots_in_use(p_worker_id uuid) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET jit = off
SET enable_seqscan = off
SET enable_bitmapscan = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN coalesce((SELECT sum(l.slot_cost)::integer FROM sluice.leases l WHERE l.worker_id = p_worker_id), 0);
END
$$;

-- The claim's and the completion's updates of sluice.runs, pruned to the
-- partitions that hold the ids (extension/src/run_updates.c). A generic plan
-- of the same UPDATE by an array of ids looks up every id in every
-- partition, and the history has one partition per day of retention.
CREATE FUNCTION sluice._start_runs(run_ids bigint[], worker_id uuid, started_at timestamptz)
RETURNS TABLE (id bigint, task text, attempt integer, input jsonb, metadata jsonb, max_attempts integer)
LANGUAGE c STRICT ROWS 10
AS 'MODULE_PATHNAME', 'sluice_start_runs';

COMMENT ON FUNCTION sluice._start_runs(bigint[], uuid, timestamptz) IS
    'Internal to claim: marks the queued runs among run_ids as running their next attempt and returns them.';

CREATE FUNCTION sluice._finish_runs(run_ids bigint[], outputs jsonb[], finished_at timestamptz)
RETURNS TABLE (id bigint, watched boolean)
LANGUAGE c STRICT ROWS 10
AS 'MODULE_PATHNAME', 'sluice_finish_runs';

COMMENT ON FUNCTION sluice._finish_runs(bigint[], jsonb[], timestamptz) IS
    'Internal to complete: marks the running runs among run_ids as succeeded with the output at each one''s position.';

-- Claims ready runs for a worker: at most max_runs, and no more than its free
-- slots (slots minus the slot cost of the runs it holds). Queues are visited
-- in the worker's order; within a queue the highest priority goes first, then
-- the run that became ready first. One claim call in ten starts with the
-- queue's longest-waiting claimable run whatever its priority, so a flood of
-- high-priority runs slows low-priority ones down but never starves them. Gated runs start only when
-- every concurrency key and rate limit admits them; the others move to
-- sluice.held. Each started run leaves sluice.ready, becomes running with its
-- attempt incremented and gets a lease, all in this one transaction.
-- The ready queue can grow from empty to a million rows faster than
-- autoanalyze notices. With statistics that think it small, the planner
-- read every matching row with a bitmap scan and sorted them, which took a
-- second per claim at a million waiting runs. Claims only make sense as an
-- ordered scan of ready_claim_idx that stops after the rows it needs, so the
-- function turns bitmap scans off for its own statements.
CREATE FUNCTION sluice.claim(worker_id uuid, max_runs integer DEFAULT 1)
RETURNS TABLE (run_id bigint, task text, attempt integer, input jsonb, metadata jsonb,
               deadline timestamptz, max_attempts integer)
LANGUAGE plpgsql
SET jit = off
SET plan_cache_mode = force_generic_plan
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_worker sluice.workers;
    v_now timestamptz := sluice.now();
    v_free integer;
    v_limit integer;
    v_tasks text[];
    v_queue text;
    v_oldest_first boolean := pg_catalog.nextval('sluice.claim_seq') % 10 = 0;
    v_first sluice._claim_candidate;
    v_candidates sluice._claim_candidate[];
    v_candidate_ids bigint[];
    v_all_plain boolean;
    v_candidate sluice._claim_candidate;
    v_accepted bigint[];
    v_costs integer[];
    v_gated bigint[];
    v_gated_accepted bigint[];
    v_closed_buckets text[] := '{}';
    v_gates_locked boolean := false;
    v_started integer;
    v_held integer;
    v_round integer;
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM sluice._require_read_committed('claim');
    END IF;
    -- The worker lookup, the checks and the slot count run inline, because
    -- the common path pays for every function call and statement
    -- (bench/RESULTS.md). The functions still raise the errors.
    --
    -- Claims of one worker take turns on a transaction advisory lock, so two
    -- of them cannot both count its free slots before either has leased a
    -- run (claim_vs_claim_same_worker). It is not the worker's row lock: a
    -- claim can wait long for gate rows that an application's cancel holds,
    -- and heartbeats and the reaper, which update that row, must not wait
    -- for it.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('sluice.claim'),
                                             pg_catalog.hashtext(claim.worker_id::text));
    SELECT * INTO v_worker FROM sluice.workers w WHERE w.id = claim.worker_id;
    IF NOT FOUND OR v_worker.stopped_at IS NOT NULL THEN
        v_worker := sluice._live_worker(claim.worker_id);
    END IF;
    IF claim.max_runs IS NULL OR claim.max_runs < 1 OR claim.max_runs > 10000 THEN
        PERFORM sluice._check_range('max_runs', claim.max_runs, 1, 10000);
    END IF;
    -- The query of _slots_in_use: through the worker's index entries (a
    -- plain index scan, since the claim turns bitmap scans off), with a
    -- snapshot taken after any lock this claim waited for.
    v_free := least(claim.max_runs,
                    v_worker.slots - coalesce((SELECT sum(l.slot_cost)::integer FROM sluice.leases l
                                               WHERE l.worker_id = claim.worker_id), 0));
    IF v_free <= 0 THEN
        DELETE FROM sluice.waiting_workers w WHERE w.worker_id = claim.worker_id;
        RETURN;
    END IF;
    -- Affinity needs a look at the other workers; most tasks have none, and
    -- then every task of the worker is claimable.
    IF EXISTS (SELECT FROM sluice.tasks t WHERE t.name = ANY (v_worker.tasks) AND t.affinity <> '[]') THEN
        v_tasks := sluice._claimable_tasks(v_worker, v_now);
    ELSE
        v_tasks := v_worker.tasks;
    END IF;

    <<queues>>
    FOREACH v_queue IN ARRAY v_worker.queues LOOP
        -- A round that turns gated runs away may leave free slots that the
        -- next candidates can use; four rounds bound the work of one call.
        FOR v_round IN 1..4 LOOP
            EXIT WHEN v_free <= 0;
            -- Candidates are locked with SKIP LOCKED, so concurrent claims
            -- never wait on each other and never pick the same run.
            v_first := NULL;
            IF v_oldest_first AND v_round = 1 THEN
                -- The longest-waiting run is the first of one task at one of
                -- the ten priorities. Short probes of the claim index find it,
                -- without a second index that every enqueue would pay for.
                SELECT r.run_id, r.gated, t.slot_cost INTO v_first
                FROM sluice.ready r JOIN sluice.tasks t ON t.name = r.task
                WHERE r.run_id = (
                    SELECT f.run_id
                    FROM unnest(v_tasks) AS k(task)
                    CROSS JOIN generate_series(0, 9) AS p(priority)
                    CROSS JOIN LATERAL (SELECT r2.run_id, r2.position FROM sluice.ready r2
                                        WHERE r2.queue = v_queue AND r2.task = k.task
                                          AND r2.priority = p.priority
                                        ORDER BY r2.position LIMIT 1) f
                    ORDER BY f.position
                    LIMIT 1)
                FOR UPDATE OF r SKIP LOCKED;
            END IF;
            -- The claim index starts with queue and task, so each task's runs
            -- are read in claim order without passing the runs of tasks this
            -- worker does not execute. The best of each task are merged. A
            -- worker of several tasks may lock a few runs it then leaves;
            -- other claims skip them until this transaction ends.
            v_limit := v_free - CASE WHEN v_first.run_id IS NULL THEN 0 ELSE 1 END;
            SELECT pg_catalog.array_agg(ROW(c.run_id, c.gated, c.slot_cost)::sluice._claim_candidate
                                        ORDER BY c.priority DESC, c.position),
                   pg_catalog.array_agg(c.run_id ORDER BY c.priority DESC, c.position),
                   pg_catalog.bool_and(NOT c.gated AND c.slot_cost = 1)
            INTO v_candidates, v_candidate_ids, v_all_plain
            FROM (SELECT r.run_id, r.gated, r.priority, r.position, t.slot_cost
                  FROM unnest(v_tasks) AS k(task)
                  JOIN sluice.tasks t ON t.name = k.task
                  CROSS JOIN LATERAL (SELECT r.run_id, r.gated, r.priority, r.position
                                      FROM sluice.ready r
                                      WHERE r.queue = v_queue AND r.task = k.task
                                        AND r.run_id IS DISTINCT FROM v_first.run_id
                                      ORDER BY r.priority DESC, r.position
                                      LIMIT v_limit
                                      FOR UPDATE SKIP LOCKED) r
                  ORDER BY r.priority DESC, r.position
                  LIMIT v_limit) c;
            IF v_first.run_id IS NOT NULL THEN
                v_candidates := v_first || coalesce(v_candidates, '{}');
                v_candidate_ids := v_first.run_id || coalesce(v_candidate_ids, '{}');
                v_all_plain := coalesce(v_all_plain, true) AND NOT v_first.gated AND v_first.slot_cost = 1;
            END IF;
            EXIT WHEN v_candidates IS NULL;

            v_accepted := '{}';
            v_costs := NULL;
            v_gated_accepted := NULL;
            v_held := 0;
            IF v_all_plain THEN
                -- No gates and one slot each: the candidates, at most v_free
                -- of them, all start.
                v_accepted := v_candidate_ids;
                v_free := v_free - pg_catalog.cardinality(v_accepted);
            ELSE
                v_gated := ARRAY(SELECT c.run_id FROM unnest(v_candidates) c WHERE c.gated);
                IF pg_catalog.cardinality(v_gated) > 0 THEN
                    -- Only the first locking of gate rows may wait. A later
                    -- round or queue has locked rows already, and waiting for a
                    -- row earlier in the lock order could deadlock. It stops
                    -- the claim instead, leaving its last candidates ready.
                    EXIT queues WHEN NOT sluice._lock_gates(v_gated, NOT v_gates_locked);
                    v_gates_locked := true;
                END IF;
                -- The common shape, one gate per run and one slot each, is
                -- admitted in one pass. Other shapes go run by run.
                IF pg_catalog.cardinality(v_gated) > 0
                   AND NOT EXISTS (SELECT FROM unnest(v_candidates) c WHERE c.slot_cost <> 1) THEN
                    v_gated_accepted := sluice._admit_single_gates(v_gated, v_now, v_closed_buckets);
                END IF;
                IF v_gated_accepted IS NOT NULL THEN
                    v_accepted := ARRAY(SELECT c.run_id FROM unnest(v_candidates) WITH ORDINALITY AS c(run_id, gated, slot_cost, n)
                                        WHERE NOT c.gated OR c.run_id = ANY (v_gated_accepted)
                                        ORDER BY c.n);
                    v_held := pg_catalog.cardinality(v_gated) - pg_catalog.cardinality(v_gated_accepted);
                    v_free := v_free - pg_catalog.cardinality(v_accepted);
                    IF v_held > 0 THEN
                        -- By run id alone, with the kind filtered outside. With the
                        -- kind beside it, held_rate_idx could serve the run ids by
                        -- reading every rate-held run.
                        v_closed_buckets := v_closed_buckets
                            || ARRAY(SELECT DISTINCT h.gate_key
                                     FROM (SELECT h.gate_key, h.kind FROM sluice.held h
                                           WHERE h.run_id = ANY (v_gated) OFFSET 0) h
                                     WHERE h.kind = 'rate');
                    END IF;
                ELSE
                    v_gated_accepted := '{}';
                    FOREACH v_candidate IN ARRAY v_candidates LOOP
                        CONTINUE WHEN v_candidate.run_id = ANY (v_accepted) OR v_candidate.slot_cost > v_free;
                        IF v_candidate.gated AND NOT sluice._pass_gates(v_candidate.run_id, v_now, v_closed_buckets) THEN
                            v_held := v_held + 1;
                            v_closed_buckets := v_closed_buckets
                                || ARRAY(SELECT h.gate_key
                                         FROM (SELECT h.gate_key, h.kind FROM sluice.held h
                                               WHERE h.run_id = v_candidate.run_id OFFSET 0) h
                                         WHERE h.kind = 'rate');
                            CONTINUE;
                        END IF;
                        v_accepted := v_accepted || v_candidate.run_id;
                        v_costs := v_costs || v_candidate.slot_cost;
                        IF v_candidate.gated THEN
                            v_gated_accepted := v_gated_accepted || v_candidate.run_id;
                        END IF;
                        v_free := v_free - v_candidate.slot_cost;
                    END LOOP;
                END IF;
            END IF;

            RETURN QUERY
            WITH removed AS (
                DELETE FROM sluice.ready r WHERE r.run_id = ANY (v_accepted)
                RETURNING r.run_id, r.gated, ((r.position >> 32) & 1)::smallint AS generation
            ), started AS (
                -- The accepted runs are locked, so removed contains each of
                -- them. Looking them up by the array keeps one index probe per
                -- run in any plan. Joined to removed instead, a plan whose
                -- statistics put no run in the queued state read every run of
                -- the history for each claim (552 ms of a 770 ms claim of 100
                -- runs over 50,000, bench/RESULTS.md).
                SELECT * FROM sluice._start_runs(v_accepted, claim.worker_id, v_now)
            ), leased AS (
                -- Each lease takes the slot cost its run was chosen with. Only the
                -- run-by-run admission can accept costs other than 1, and it fills
                -- v_costs. A lease that read the task again could put the worker
                -- over its slots when a define_task commits during the claim
                -- (claim_vs_define_slot_cost).
                INSERT INTO sluice.leases (run_id, worker_id, attempt, started_at, deadline, slot_cost, gated, generation)
                SELECT s.id, claim.worker_id, s.attempt, v_now, v_now + t.execution_timeout,
                       CASE WHEN v_costs IS NULL THEN 1
                            ELSE v_costs[pg_catalog.array_position(v_accepted, s.id)] END,
                       m.gated, m.generation
                FROM started s JOIN removed m ON m.run_id = s.id JOIN sluice.tasks t ON t.name = s.task
                RETURNING run_id, deadline
            )
            SELECT s.id, s.task, s.attempt, s.input, s.metadata, l.deadline, s.max_attempts
            FROM started s JOIN leased l ON l.run_id = s.id
            ORDER BY s.id;
            GET DIAGNOSTICS v_started = ROW_COUNT;

            -- A run accepted here that did not start had left the queued state while its
            -- ready row remained. sluice.cancel deletes the queue row of the state it
            -- cancels (cancel_vs_retry_claim), so this branch is a safeguard. It gives
            -- back the concurrency slots and the rate-limit tokens the run took.
            IF v_started < pg_catalog.cardinality(v_accepted) AND pg_catalog.cardinality(v_gated_accepted) > 0 THEN
                PERFORM sluice._give_back_gates(ARRAY(
                    SELECT a.run_id FROM unnest(v_gated_accepted) AS a(run_id)
                    WHERE NOT EXISTS (SELECT FROM sluice.leases l WHERE l.run_id = a.run_id)));
            END IF;

            EXIT WHEN v_held = 0;
        END LOOP;
        EXIT WHEN v_free <= 0;
    END LOOP;

    -- A claim that found less work than the worker has room for makes the
    -- worker a waiter, so enqueues notify it. A claim that filled the room
    -- ends the wait, so enqueues stop sending notifications no worker needs.
    IF v_free > 0 THEN
        INSERT INTO sluice.waiting_workers (worker_id, queues) VALUES (claim.worker_id, v_worker.queues)
        ON CONFLICT (worker_id) DO NOTHING;
    ELSE
        DELETE FROM sluice.waiting_workers w WHERE w.worker_id = claim.worker_id;
    END IF;
END
$$;

COMMENT ON FUNCTION sluice.claim(uuid, integer) IS
    'Claims up to max_runs (1-10000) ready runs of the worker''s tasks and queues within its free slots, '
    'highest priority first, then longest waiting, applying concurrency keys, rate limits and affinity. Returns run id, '
    'task, attempt, input, metadata, execution deadline and max_attempts of each.';

-- A claim that waits in the server, for workers with nothing to do. When
-- sluice.claim finds nothing, it waits up to timeout for an enqueue's
-- sluice_ready notification and claims at once in the same call, without the
-- round trip through a listening client (extension/src/claim_wait.c). The
-- session listens on sluice_ready from the first call on, so its client
-- receives those notifications and may ignore them. A call returns without
-- waiting when it is the session's first, when the worker was not yet
-- waiting, when its claim wrote something, and inside a transaction block.
-- While it waits it holds no lock, only its statement's snapshot.
CREATE FUNCTION sluice.claim_or_wait(worker_id uuid, max_runs integer DEFAULT 1,
                                     timeout interval DEFAULT '1 second')
RETURNS TABLE (run_id bigint, task text, attempt integer, input jsonb, metadata jsonb,
               deadline timestamptz, max_attempts integer)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'sluice_claim_or_wait';

COMMENT ON FUNCTION sluice.claim_or_wait(uuid, integer, interval) IS
    'Claims like sluice.claim; when nothing is claimable, waits in the server up to timeout (0 to 1 minute) for '
    'runs to become ready and claims them. Listens on sluice_ready in the calling session.';

-- Between vacuums the lease table keeps the dead rows of every run completed
-- since the last one. The generic plan read the whole table into a hash join,
-- so a completion cost more the more runs had finished before it. Over a
-- table that vacuum had not visited for 6 s, completing 100 runs took 1.7 ms
-- that way and 0.9 ms with an index probe per run. The leases are read by
-- the array of ids, and nested loops are off, so the join reads only the
-- batch's leases. Statistics that counted no leases made a nested loop or
-- hash join over every lease look as cheap: 0.41 ms against 0.15 for a
-- batch of 10.
CREATE FUNCTION sluice.complete(run_ids bigint[], attempts integer[], outputs jsonb[])
RETURNS SETOF bigint
LANGUAGE plpgsql
SET jit = off
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_nestloop = off
AS $$
DECLARE
    v_now timestamptz := sluice.now();
    v_count integer := coalesce(pg_catalog.cardinality(complete.run_ids), 0);
    v_bad integer;
    v_released bigint[];
    v_outputs jsonb[];
    v_gated_leases bigint[];
    v_done bigint[];
    v_gated bigint[];
    v_slot_keys text[];
    v_watched bigint[];
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM sluice._require_read_committed('complete');
    END IF;
    IF coalesce(pg_catalog.cardinality(complete.attempts), 0) <> v_count
       OR coalesce(pg_catalog.cardinality(complete.outputs), 0) <> v_count THEN
        PERFORM sluice._invalid_option('arguments',
            format('%s run ids, %s attempts and %s outputs', v_count,
                   coalesce(pg_catalog.cardinality(complete.attempts), 0),
                   coalesce(pg_catalog.cardinality(complete.outputs), 0)),
            'run_ids, attempts and outputs have one element per run.');
    END IF;
    SELECT o.n INTO v_bad FROM unnest(complete.outputs) WITH ORDINALITY AS o(output, n)
    WHERE pg_catalog.pg_column_size(o.output) > sluice.max_payload_bytes()
    LIMIT 1;
    IF FOUND THEN
        PERFORM sluice._check_payload(format('output of run %s', complete.run_ids[v_bad]),
                                      complete.outputs[v_bad], false);
    END IF;

    -- The leases are locked in run id order, as fail and the victims of a
    -- cancel_in_progress enqueue lock them (complete_vs_victims_lock_order).
    -- The items are sorted by run id, and the leases are read through the
    -- primary key (bitmap scans are off), so whichever side drives the join
    -- gives that order. Locked in heap order, a completion and such an
    -- enqueue deadlocked. An item that repeats a run and attempt is a
    -- caller's error, and then one of its outputs is stored.
    -- NOTE: the order holds within each generation of sluice.leases. A batch
    -- whose runs were claimed from both generations, around a
    -- shed_dead_rows, can lock its old generation's leases first.
    WITH item AS (
        SELECT * FROM unnest(complete.run_ids, complete.attempts, complete.outputs) AS i(run_id, attempt, output)
        ORDER BY i.run_id
    ), released AS (
        DELETE FROM sluice.leases l USING item i
        WHERE l.run_id = ANY (complete.run_ids) AND l.run_id = i.run_id AND l.attempt = i.attempt
        RETURNING l.run_id, i.output, l.gated
    )
    SELECT pg_catalog.array_agg(rel.run_id), pg_catalog.array_agg(rel.output),
           pg_catalog.array_agg(rel.run_id) FILTER (WHERE rel.gated)
    INTO v_released, v_outputs, v_gated_leases
    FROM released rel;

    -- By the array of ids, as in claim, so that no plan reads the whole
    -- history. Each released run id is there once: a lease has one attempt.
    WITH updated AS (
        SELECT * FROM sluice._finish_runs(v_released, v_outputs, v_now)
    )
    SELECT pg_catalog.array_agg(u.id), pg_catalog.array_agg(u.id) FILTER (WHERE u.id = ANY (v_gated_leases)),
           pg_catalog.array_agg(u.id) FILTER (WHERE u.watched)
    INTO v_done, v_gated, v_watched
    FROM updated u;

    -- A completed run was running, so it has no row in sluice.held for
    -- _close_gates to delete. One statement deletes its gates and returns the
    -- keys of the slots it occupied, which are its concurrency gates (see
    -- _release_slots). The gate rows go before the slot rows are locked. No
    -- other transaction touches a running run's gates, so this order cannot
    -- wait in a cycle.
    IF v_gated IS NOT NULL THEN
        WITH closed AS (
            DELETE FROM sluice.run_gates g WHERE g.run_id = ANY (v_gated) RETURNING g.kind, g.gate_key
        )
        SELECT pg_catalog.array_agg(c.gate_key) FILTER (WHERE c.kind = 'concurrency') INTO v_slot_keys
        FROM closed c;
        PERFORM sluice._free_slots(v_slot_keys);
    END IF;
    IF v_watched IS NOT NULL THEN
        PERFORM pg_catalog.pg_notify('sluice_finished', w::text) FROM unnest(v_watched) AS w;
    END IF;
    RETURN QUERY SELECT unnest(v_done);
END
$$;

COMMENT ON FUNCTION sluice.complete(bigint[], integer[], jsonb[]) IS
    'Records the success of several attempts at once: each run id with the attempt that ran it and its output. '
    'Returns the ids that were accepted; an attempt that no longer holds its run is ignored.';

CREATE FUNCTION sluice.complete(run_id bigint, attempt integer, output jsonb DEFAULT NULL)
RETURNS boolean
LANGUAGE sql
AS $$
    SELECT EXISTS (SELECT FROM sluice.complete(ARRAY[run_id], ARRAY[attempt], ARRAY[output]))
$$;

COMMENT ON FUNCTION sluice.complete(bigint, integer, jsonb) IS
    'Records the success of one attempt with its output. Returns false when that attempt no longer holds the run.';

-- Moves run p_run_id, whose lease for attempt p_attempt the caller has just
-- deleted, to its next state after a failed attempt: back to scheduled or
-- queued while attempts remain and the error is retryable, failed otherwise.
-- p_gated is the lease's gated flag: whether the run holds gates to release.
-- Returns the new status, or NULL when the run was not running that attempt.
CREATE FUNCTION sluice._retry_or_fail(
    p_run_id bigint, p_attempt integer, p_error jsonb, p_retryable boolean, p_now timestamptz, p_gated boolean
) RETURNS sluice.run_status
LANGUAGE plpgsql
AS $$
DECLARE
    v_run record;
    v_delay interval;
    v_status sluice.run_status;
BEGIN
    SELECT r.id, r.queue, r.task, r.priority, r.attempt, r.max_attempts, r.status, r.watched, t.backoff_base,
           t.backoff_factor, t.backoff_max, t.backoff_jitter, t.schedule_timeout
    INTO v_run
    FROM sluice.runs r JOIN sluice.tasks t ON t.name = r.task
    WHERE r.id = p_run_id
    FOR UPDATE OF r;
    IF NOT FOUND OR v_run.status <> 'running' OR v_run.attempt <> p_attempt THEN
        RETURN NULL;
    END IF;
    IF p_gated THEN
        PERFORM sluice._release_slots(ARRAY[p_run_id]);
    END IF;

    INSERT INTO sluice.attempt_errors (run_id, attempt, error, failed_at)
    VALUES (p_run_id, p_attempt, p_error, p_now)
    ON CONFLICT DO NOTHING;

    IF NOT p_retryable OR v_run.attempt >= v_run.max_attempts THEN
        UPDATE sluice.runs SET status = 'failed', error = p_error, finished_at = p_now WHERE id = p_run_id;
        IF p_gated THEN
            PERFORM sluice._close_gates(ARRAY[p_run_id]);
        END IF;
        IF v_run.watched THEN
            PERFORM pg_catalog.pg_notify('sluice_finished', p_run_id::text);
        END IF;
        RETURN 'failed';
    END IF;

    v_delay := sluice.retry_delay(v_run.attempt, v_run.backoff_base, v_run.backoff_factor, v_run.backoff_max,
                                  v_run.backoff_jitter);
    IF v_delay > '0' THEN
        v_status := 'scheduled';
        INSERT INTO sluice.delayed (run_id, run_at, queue) VALUES (p_run_id, p_now + v_delay, v_run.queue);
        PERFORM pg_catalog.pg_notify('sluice_timer', '');
    ELSE
        v_status := 'queued';
        INSERT INTO sluice.ready (run_id, queue, task, priority, ready_at, gated)
        VALUES (p_run_id, v_run.queue, v_run.task, v_run.priority, p_now, p_gated);
        PERFORM sluice._wake(v_run.queue);
    END IF;
    UPDATE sluice.runs SET status = v_status, error = p_error, run_at = p_now + v_delay, worker_id = NULL
    WHERE id = p_run_id;
    RETURN v_status;
END
$$;

-- Builds the error document stored for a failed attempt. Messages longer
-- than 1 MiB are cut there, with the original length noted, so that an
-- oversized message cannot keep a run from reaching its next state.
CREATE FUNCTION sluice._error_document(p_message text, p_kind text, p_details jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'message', CASE WHEN pg_catalog.octet_length(p_message) <= 1048576 THEN p_message
                        ELSE pg_catalog.left(p_message, 262144)
                             || format(' [truncated from %s bytes]', pg_catalog.octet_length(p_message)) END,
        'kind', p_kind,
        'details', CASE WHEN pg_catalog.pg_column_size(p_details) <= 1048576 THEN p_details END))
$$;

CREATE FUNCTION sluice.fail(run_ids bigint[], attempts integer[], errors text[], retryable boolean[] DEFAULT NULL)
RETURNS TABLE (run_id bigint, status sluice.run_status)
LANGUAGE plpgsql
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := sluice.now();
    v_count integer := coalesce(pg_catalog.cardinality(fail.run_ids), 0);
    v_item record;
    v_gated boolean;
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM sluice._require_read_committed('fail');
    END IF;
    IF coalesce(pg_catalog.cardinality(fail.attempts), 0) <> v_count
       OR coalesce(pg_catalog.cardinality(fail.errors), 0) <> v_count
       OR (fail.retryable IS NOT NULL AND pg_catalog.cardinality(fail.retryable) <> v_count) THEN
        PERFORM sluice._invalid_option('arguments',
            format('%s run ids, %s attempts, %s errors and %s retryable flags', v_count,
                   coalesce(pg_catalog.cardinality(fail.attempts), 0),
                   coalesce(pg_catalog.cardinality(fail.errors), 0),
                   coalesce(pg_catalog.cardinality(fail.retryable)::text, 'no')),
            'run_ids, attempts, errors and retryable (when given) have one element per run.');
    END IF;

    -- Lease rows before slot rows, the order complete and cancel use too.
    PERFORM FROM sluice.leases l WHERE l.run_id = ANY (fail.run_ids) ORDER BY l.run_id FOR UPDATE;
    PERFORM sluice._lock_gates(fail.run_ids);
    FOR v_item IN
        SELECT i.run_id, i.attempt, i.error, coalesce(fail.retryable[i.n], true) AS retryable
        FROM unnest(fail.run_ids, fail.attempts, fail.errors) WITH ORDINALITY AS i(run_id, attempt, error, n)
        ORDER BY i.run_id
    LOOP
        DELETE FROM sluice.leases l WHERE l.run_id = v_item.run_id AND l.attempt = v_item.attempt
        RETURNING l.gated INTO v_gated;
        IF FOUND THEN
            run_id := v_item.run_id;
            status := sluice._retry_or_fail(v_item.run_id, v_item.attempt,
                          sluice._error_document(coalesce(v_item.error, 'unknown error'),
                                                 CASE WHEN v_item.retryable THEN 'error' ELSE 'fatal' END, NULL),
                          v_item.retryable, v_now, v_gated);
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION sluice.fail(bigint[], integer[], text[], boolean[]) IS
    'Records the failure of several attempts: run ids, attempts, error messages and whether each is retryable '
    '(default true). Returns the new status of each accepted run: scheduled or queued for a retry, or failed.';

CREATE FUNCTION sluice.fail(run_id bigint, attempt integer, error text, retryable boolean DEFAULT true)
RETURNS sluice.run_status
LANGUAGE sql
AS $$
    SELECT f.status FROM sluice.fail(ARRAY[run_id], ARRAY[attempt], ARRAY[error], ARRAY[retryable]) AS f
$$;

COMMENT ON FUNCTION sluice.fail(bigint, integer, text, boolean) IS
    'Records the failure of one attempt. Returns the run''s new status (scheduled, queued or failed), '
    'or NULL when that attempt no longer holds the run.';

CREATE FUNCTION sluice.heartbeat(worker_id uuid, run_ids bigint[] DEFAULT '{}')
RETURNS SETOF bigint
LANGUAGE plpgsql
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now timestamptz := sluice.now();
    v_held bigint[];
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM sluice._require_read_committed('heartbeat');
    END IF;
    UPDATE sluice.workers w SET heartbeat_at = v_now
    WHERE w.id = heartbeat.worker_id AND w.stopped_at IS NULL;
    IF NOT FOUND THEN
        PERFORM sluice._live_worker(heartbeat.worker_id);
    END IF;

    -- The worker's leases among the ids are read first, by the array. As an
    -- anti-join, statistics that counted no leases made a full scan of the
    -- primary key look as cheap as a probe per run.
    SELECT pg_catalog.array_agg(l.run_id) INTO v_held
    FROM sluice.leases l
    WHERE l.run_id = ANY (heartbeat.run_ids) AND l.worker_id = heartbeat.worker_id;
    RETURN QUERY
    SELECT x.run_id FROM unnest(heartbeat.run_ids) AS x(run_id)
    WHERE NOT coalesce(x.run_id = ANY (v_held), false);
END
$$;

COMMENT ON FUNCTION sluice.heartbeat(uuid, bigint[]) IS
    'Records that a worker is alive. Returns those of the given run ids that the worker no longer holds '
    '(cancelled, expired or finished elsewhere), so it stops them. Raises SL005 for a stopped or unknown worker.';

-- Releases every lease of worker p_worker_id for stop_worker and sends each
-- run to retry or failure. Returns the number of runs released.
CREATE FUNCTION sluice._release_leases(p_worker_id uuid, p_error jsonb, p_now timestamptz) RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_lease record;
    v_count integer := 0;
BEGIN
    PERFORM FROM sluice.leases l WHERE l.worker_id = p_worker_id FOR UPDATE;
    PERFORM sluice._lock_gates(ARRAY(SELECT l.run_id FROM sluice.leases l WHERE l.worker_id = p_worker_id));
    FOR v_lease IN
        DELETE FROM sluice.leases l WHERE l.worker_id = p_worker_id RETURNING l.run_id, l.attempt, l.gated
    LOOP
        PERFORM sluice._retry_or_fail(v_lease.run_id, v_lease.attempt, p_error, true, p_now, v_lease.gated);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;

CREATE FUNCTION sluice.stop_worker(worker_id uuid, reason text DEFAULT 'stopped') RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_now timestamptz := sluice.now();
    v_worker sluice.workers;
    v_released integer;
BEGIN
    UPDATE sluice.workers w SET stopped_at = v_now, stop_reason = coalesce(stop_worker.reason, 'stopped')
    WHERE w.id = stop_worker.worker_id AND w.stopped_at IS NULL
    RETURNING * INTO v_worker;
    IF NOT FOUND THEN
        PERFORM sluice._live_worker(stop_worker.worker_id);
    END IF;
    v_released := sluice._release_leases(stop_worker.worker_id,
        sluice._error_document(format('worker %s (%s) stopped while the attempt ran', v_worker.name,
                                      stop_worker.worker_id), 'worker_stopped', NULL),
        v_now);
    -- After the gate rows that releasing the leases locked, as in expire_leases:
    -- a claim of this worker may hold one while it marks itself waiting.
    DELETE FROM sluice.waiting_workers w WHERE w.worker_id = stop_worker.worker_id;
    RETURN v_released;
END
$$;

COMMENT ON FUNCTION sluice.stop_worker(uuid, text) IS
    'Marks a worker incarnation stopped and sends the runs it still holds to retry. Returns how many it held.';
