-- Enqueueing runs. Both functions run inside the caller's transaction, so a
-- run exists if and only if that transaction commits.

-- Inserts run p_id of task p_task and makes it available: into sluice.ready
-- when it may start now, into sluice.delayed otherwise. Callers have
-- validated every argument.
CREATE FUNCTION sluice._insert_run(
    p_task sluice.tasks, p_id bigint, p_input jsonb, p_metadata jsonb, p_priority integer,
    p_run_at timestamptz, p_max_attempts integer, p_idempotency_key text, p_now timestamptz
) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_priority smallint := coalesce(p_priority, p_task.priority);
    v_ready boolean := p_run_at <= p_now;
    v_gate text;
BEGIN
    INSERT INTO sluice.runs (id, task, queue, status, priority, input, metadata, max_attempts,
                             idempotency_key, created_at, run_at)
    VALUES (p_id, p_task.name, p_task.queue,
            CASE WHEN v_ready THEN 'queued' ELSE 'scheduled' END::sluice.run_status,
            v_priority, p_input, p_metadata, coalesce(p_max_attempts, p_task.max_attempts),
            p_idempotency_key, p_now, p_run_at);

    IF p_task.gated THEN
        v_gate := sluice._open_gates(p_task, p_id, p_input, p_metadata);
        IF v_gate = 'cancelled' THEN
            UPDATE sluice.runs
            SET status = 'cancelled', finished_at = p_now,
                error = sluice._error_document('cancelled at enqueue: its concurrency key was full (cancel_newest)',
                                               'cancelled', NULL)
            WHERE id = p_id;
            RETURN;
        END IF;
        IF v_gate <> 'ready' AND v_ready THEN
            INSERT INTO sluice.held (run_id, gate_key, kind, queue, task, priority, ready_at, schedule_deadline, units)
            VALUES (p_id, v_gate, 'concurrency', p_task.queue, p_task.name, v_priority, p_now,
                    p_run_at + p_task.schedule_timeout, 1);
            RETURN;
        END IF;
    END IF;

    IF v_ready THEN
        INSERT INTO sluice.ready (run_id, queue, task, priority, ready_at, schedule_deadline, gated)
        VALUES (p_id, p_task.queue, p_task.name, v_priority, p_now, p_run_at + p_task.schedule_timeout, p_task.gated);
        PERFORM sluice._wake(p_task.queue);
    ELSE
        INSERT INTO sluice.delayed (run_id, run_at, queue) VALUES (p_id, p_run_at, p_task.queue);
        PERFORM pg_catalog.pg_notify('sluice_timer', '');
    END IF;
END
$$;

-- Validates the options shared by enqueue and enqueue_many and returns the
-- time the runs may start.
CREATE FUNCTION sluice._start_time(
    p_metadata jsonb, p_priority integer, p_run_at timestamptz, p_delay interval, p_max_attempts integer,
    p_now timestamptz
) RETURNS timestamptz
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM sluice._check_payload('metadata', p_metadata, true);
    IF p_priority IS NOT NULL THEN
        PERFORM sluice._check_range('priority', p_priority, 0, 9);
    END IF;
    IF p_max_attempts IS NOT NULL THEN
        PERFORM sluice._check_range('max_attempts', p_max_attempts, 1, 10000);
    END IF;
    IF p_run_at IS NOT NULL AND p_delay IS NOT NULL THEN
        RAISE EXCEPTION 'run_at and delay cannot both be given'
            USING ERRCODE = 'SL004', HINT = 'Pass run_at for an absolute time or delay for a relative one.';
    END IF;
    IF p_delay IS NOT NULL THEN
        PERFORM sluice._check_interval('delay', p_delay, '0', '3650 days');
        RETURN p_now + p_delay;
    END IF;
    IF p_run_at IS NOT NULL AND p_run_at IN ('infinity', '-infinity') THEN
        PERFORM sluice._invalid_option('run_at', p_run_at::text, 'run_at must be a finite time.');
    END IF;
    RETURN coalesce(p_run_at, p_now);
END
$$;

CREATE FUNCTION sluice.enqueue(
    task            text,
    input           jsonb DEFAULT '{}',
    metadata        jsonb DEFAULT '{}',
    priority        integer DEFAULT NULL,
    run_at          timestamptz DEFAULT NULL,
    delay           interval DEFAULT NULL,
    max_attempts    integer DEFAULT NULL,
    idempotency_key text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_task sluice.tasks;
    v_now timestamptz := sluice.now();
    v_start timestamptz;
    v_id bigint;
BEGIN
    SELECT * INTO v_task FROM sluice.tasks t WHERE t.name = enqueue.task;
    IF NOT FOUND THEN
        PERFORM sluice._task(enqueue.task);
    END IF;
    IF enqueue.input IS NULL OR pg_catalog.jsonb_typeof(enqueue.input) <> 'object'
       OR pg_catalog.pg_column_size(enqueue.input) > sluice.max_payload_bytes() THEN
        PERFORM sluice._check_payload('input', enqueue.input, true);
    END IF;

    -- The common case, a run with an input and nothing else, needs none of
    -- the option checks below. This path is most of the cost of enqueueing,
    -- so it inserts directly.
    IF enqueue.metadata = '{}' AND enqueue.priority IS NULL AND enqueue.run_at IS NULL AND enqueue.delay IS NULL
       AND enqueue.max_attempts IS NULL AND enqueue.idempotency_key IS NULL AND NOT v_task.gated THEN
        INSERT INTO sluice.runs (task, queue, status, priority, input, max_attempts, created_at, run_at)
        VALUES (v_task.name, v_task.queue, 'queued', v_task.priority, enqueue.input, v_task.max_attempts, v_now, v_now)
        RETURNING id INTO v_id;
        INSERT INTO sluice.ready (run_id, queue, task, priority, ready_at, schedule_deadline)
        VALUES (v_id, v_task.queue, v_task.name, v_task.priority, v_now, v_now + v_task.schedule_timeout);
        PERFORM sluice._wake(v_task.queue);
        RETURN v_id;
    END IF;

    v_start := sluice._start_time(enqueue.metadata, enqueue.priority, enqueue.run_at, enqueue.delay,
                                  enqueue.max_attempts, v_now);
    v_id := pg_catalog.nextval('sluice.run_id_seq');

    -- The primary key of idempotency_keys decides between concurrent
    -- enqueues with one key: the second waits for the first transaction and
    -- inserts its own row only if the first rolled back.
    IF enqueue.idempotency_key IS NOT NULL THEN
        IF pg_catalog.length(enqueue.idempotency_key) NOT BETWEEN 1 AND 512 THEN
            PERFORM sluice._invalid_option('idempotency_key', pg_catalog.quote_literal(pg_catalog.left(enqueue.idempotency_key, 40)),
                                           'An idempotency key is 1 to 512 characters.');
        END IF;
        INSERT INTO sluice.idempotency_keys AS k (task, key, run_id)
        VALUES (v_task.name, enqueue.idempotency_key, v_id)
        ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO NOTHING;
        IF NOT FOUND THEN
            RETURN (SELECT k.run_id FROM sluice.idempotency_keys k
                    WHERE k.task = v_task.name AND k.key = enqueue.idempotency_key);
        END IF;
    END IF;

    PERFORM sluice._insert_run(v_task, v_id, enqueue.input, enqueue.metadata, enqueue.priority, v_start,
                               enqueue.max_attempts, enqueue.idempotency_key, v_now);
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION sluice.enqueue(text, jsonb, jsonb, integer, timestamptz, interval, integer, text) IS
    'Enqueues one run of a task and returns its id. input and metadata are JSON objects; priority 0-9 '
    '(higher first, default from the task); run_at or delay postpones the start; an idempotency_key '
    'makes a repeated enqueue return the first run''s id.';

CREATE FUNCTION sluice.enqueue_many(
    task             text,
    inputs           jsonb[],
    metadata         jsonb DEFAULT '{}',
    priority         integer DEFAULT NULL,
    run_at           timestamptz DEFAULT NULL,
    delay            interval DEFAULT NULL,
    max_attempts     integer DEFAULT NULL,
    idempotency_keys text[] DEFAULT NULL
) RETURNS bigint[]
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    v_task sluice.tasks := sluice._task(enqueue_many.task);
    v_now timestamptz := sluice.now();
    v_start timestamptz;
    v_count integer := coalesce(pg_catalog.cardinality(enqueue_many.inputs), 0);
    v_bad integer;
    v_ids bigint[];
BEGIN
    IF enqueue_many.inputs IS NULL OR v_count > 100000 THEN
        PERFORM sluice._invalid_option('inputs', CASE WHEN enqueue_many.inputs IS NULL THEN NULL
                                                      ELSE format('an array of %s inputs', v_count) END,
                                       'inputs is an array of 0 to 100000 JSON objects.');
    END IF;
    SELECT i.n INTO v_bad FROM unnest(enqueue_many.inputs) WITH ORDINALITY AS i(input, n)
    WHERE i.input IS NULL OR pg_catalog.jsonb_typeof(i.input) <> 'object'
       OR pg_catalog.pg_column_size(i.input) > sluice.max_payload_bytes()
    LIMIT 1;
    IF FOUND THEN
        PERFORM sluice._check_payload(format('input %s', v_bad), enqueue_many.inputs[v_bad], true);
    END IF;
    v_start := sluice._start_time(enqueue_many.metadata, enqueue_many.priority, enqueue_many.run_at,
                                  enqueue_many.delay, enqueue_many.max_attempts, v_now);

    -- Keyed runs and gated runs go one by one through enqueue, which settles
    -- duplicates and computes each run's concurrency keys and rate limits.
    IF enqueue_many.idempotency_keys IS NOT NULL OR v_task.gated THEN
        IF pg_catalog.cardinality(coalesce(enqueue_many.idempotency_keys, pg_catalog.array_fill(NULL::text, ARRAY[v_count]))) <> v_count THEN
            PERFORM sluice._invalid_option('idempotency_keys',
                format('an array of %s keys for %s inputs', pg_catalog.cardinality(enqueue_many.idempotency_keys), v_count),
                'Pass one key per input, or NULL for an input without a key.');
        END IF;
        SELECT pg_catalog.array_agg(sluice.enqueue(v_task.name, i.input, enqueue_many.metadata,
                                                   enqueue_many.priority, v_start, NULL,
                                                   enqueue_many.max_attempts, i.key) ORDER BY i.n)
        INTO v_ids
        FROM unnest(enqueue_many.inputs,
                    coalesce(enqueue_many.idempotency_keys, pg_catalog.array_fill(NULL::text, ARRAY[v_count])))
             WITH ORDINALITY AS i(input, key, n);
        RETURN coalesce(v_ids, '{}');
    END IF;

    WITH item AS (
        SELECT pg_catalog.nextval('sluice.run_id_seq') AS id, i.input, i.n
        FROM unnest(enqueue_many.inputs) WITH ORDINALITY AS i(input, n)
    ), inserted AS (
        INSERT INTO sluice.runs (id, task, queue, status, priority, input, metadata, max_attempts,
                                 created_at, run_at)
        SELECT item.id, v_task.name, v_task.queue,
               CASE WHEN v_start <= v_now THEN 'queued' ELSE 'scheduled' END::sluice.run_status,
               coalesce(enqueue_many.priority, v_task.priority), item.input, enqueue_many.metadata,
               coalesce(enqueue_many.max_attempts, v_task.max_attempts), v_now, v_start
        FROM item
        RETURNING id
    ), made_ready AS (
        INSERT INTO sluice.ready (run_id, queue, task, priority, ready_at, schedule_deadline)
        SELECT item.id, v_task.queue, v_task.name, coalesce(enqueue_many.priority, v_task.priority), v_now,
               v_start + v_task.schedule_timeout
        FROM item WHERE v_start <= v_now
        ORDER BY item.n
    ), made_delayed AS (
        INSERT INTO sluice.delayed (run_id, run_at, queue)
        SELECT item.id, v_start, v_task.queue FROM item WHERE v_start > v_now
    )
    SELECT pg_catalog.array_agg(item.id ORDER BY item.n) INTO v_ids FROM item;

    IF v_count > 0 THEN
        IF v_start <= v_now THEN
            PERFORM sluice._wake(v_task.queue);
        ELSE
            PERFORM pg_catalog.pg_notify('sluice_timer', '');
        END IF;
    END IF;
    RETURN coalesce(v_ids, '{}');
END
$$;

COMMENT ON FUNCTION sluice.enqueue_many(text, jsonb[], jsonb, integer, timestamptz, interval, integer, text[]) IS
    'Enqueues one run per element of inputs (up to 100000) with shared options and returns their ids in input order. '
    'idempotency_keys, when given, has one key (or NULL) per input.';
