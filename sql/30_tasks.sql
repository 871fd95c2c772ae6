-- Task definitions.

-- Creates or replaces a task definition. Workers call it when they start,
-- with the options declared in code, so the latest declaration wins.
CREATE FUNCTION sluice.define_task(
    name              text,
    queue             text DEFAULT 'default',
    max_attempts      integer DEFAULT 3,
    backoff_base      interval DEFAULT '1 second',
    backoff_factor    double precision DEFAULT 2,
    backoff_max       interval DEFAULT '10 minutes',
    backoff_jitter    double precision DEFAULT 0.1,
    execution_timeout interval DEFAULT '5 minutes',
    schedule_timeout  interval DEFAULT NULL,
    priority          integer DEFAULT 0,
    slot_cost         integer DEFAULT 1,
    concurrency       jsonb DEFAULT NULL,
    rate_limits       jsonb DEFAULT NULL,
    affinity          jsonb DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_concurrency jsonb := sluice._normalize_concurrency(define_task.concurrency);
    v_rate_limits jsonb := sluice._normalize_rate_limits(define_task.rate_limits);
    v_affinity jsonb := sluice._normalize_affinity(define_task.affinity);
BEGIN
    PERFORM sluice._check_name('task name', define_task.name);
    PERFORM sluice._check_name('queue name', define_task.queue);
    PERFORM sluice._check_range('max_attempts', define_task.max_attempts, 1, 10000);
    PERFORM sluice._check_interval('backoff_base', define_task.backoff_base, '0', '1 day');
    PERFORM sluice._check_range('backoff_factor', define_task.backoff_factor, 1, 100);
    PERFORM sluice._check_interval('backoff_max', define_task.backoff_max, define_task.backoff_base, '30 days');
    PERFORM sluice._check_range('backoff_jitter', define_task.backoff_jitter, 0, 1);
    PERFORM sluice._check_interval('execution_timeout', define_task.execution_timeout, '1 second', '30 days');
    IF define_task.schedule_timeout IS NOT NULL THEN
        PERFORM sluice._check_interval('schedule_timeout', define_task.schedule_timeout, '1 second', '365 days');
    END IF;
    PERFORM sluice._check_range('priority', define_task.priority, 0, 9);
    PERFORM sluice._check_range('slot_cost', define_task.slot_cost, 1, 100000);

    INSERT INTO sluice.tasks AS t (name, queue, max_attempts, backoff_base, backoff_factor, backoff_max,
                                   backoff_jitter, execution_timeout, schedule_timeout, priority, slot_cost,
                                   concurrency, rate_limits, affinity)
    VALUES (define_task.name, define_task.queue, define_task.max_attempts, define_task.backoff_base,
            define_task.backoff_factor, define_task.backoff_max, define_task.backoff_jitter,
            define_task.execution_timeout, define_task.schedule_timeout, define_task.priority,
            define_task.slot_cost, v_concurrency, v_rate_limits, v_affinity)
    ON CONFLICT ON CONSTRAINT tasks_pkey DO UPDATE
    SET queue = excluded.queue, max_attempts = excluded.max_attempts, backoff_base = excluded.backoff_base,
        backoff_factor = excluded.backoff_factor, backoff_max = excluded.backoff_max,
        backoff_jitter = excluded.backoff_jitter, execution_timeout = excluded.execution_timeout,
        schedule_timeout = excluded.schedule_timeout, priority = excluded.priority,
        slot_cost = excluded.slot_cost, concurrency = excluded.concurrency, rate_limits = excluded.rate_limits,
        affinity = excluded.affinity, updated_at = sluice.now()
    WHERE (t.queue, t.max_attempts, t.backoff_base, t.backoff_factor, t.backoff_max, t.backoff_jitter,
           t.execution_timeout, t.schedule_timeout, t.priority, t.slot_cost, t.concurrency, t.rate_limits,
           t.affinity)
          IS DISTINCT FROM
          (excluded.queue, excluded.max_attempts, excluded.backoff_base, excluded.backoff_factor,
           excluded.backoff_max, excluded.backoff_jitter, excluded.execution_timeout,
           excluded.schedule_timeout, excluded.priority, excluded.slot_cost, excluded.concurrency,
           excluded.rate_limits, excluded.affinity);

    -- A changed maximum applies to the existing keys of each rule; the
    -- coordinator hands newly free slots to held runs on its next tick. The
    -- rows are locked in key order first, the order claims lock them in.
    PERFORM FROM sluice.concurrency_slots s
    WHERE s.task = define_task.name AND s.rule < pg_catalog.jsonb_array_length(v_concurrency)
      AND s.max_running <> (v_concurrency -> s.rule ->> 'max')::integer
    ORDER BY s.gate_key
    FOR UPDATE;
    UPDATE sluice.concurrency_slots s SET max_running = (v_concurrency -> s.rule ->> 'max')::integer
    WHERE s.task = define_task.name AND s.rule < pg_catalog.jsonb_array_length(v_concurrency)
      AND s.max_running <> (v_concurrency -> s.rule ->> 'max')::integer;
END
$$;

COMMENT ON FUNCTION sluice.define_task(text, text, integer, interval, double precision, interval,
                                       double precision, interval, interval, integer, integer, jsonb, jsonb, jsonb) IS
    'Creates or updates a task: queue, max_attempts (1-10000), backoff base/factor/max/jitter, '
    'execution_timeout per attempt, schedule_timeout (max wait before the first start), default priority (0-9), '
    'slot_cost (worker slots one run occupies), concurrency rules [{"key", "max", "strategy"}], '
    'rate_limits [{"key", "units", "limit", "period"}] and affinity [{"label", "op", "value", "required", "weight"}].';

-- Returns the definition of task p_name, raising SL001 when it is not defined.
CREATE FUNCTION sluice._task(p_name text) RETURNS sluice.tasks
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_task sluice.tasks;
BEGIN
    SELECT * INTO v_task FROM sluice.tasks WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task % is not defined', pg_catalog.quote_literal(coalesce(p_name, 'NULL'))
            USING ERRCODE = 'SL001',
                  HINT = 'Define it with sluice.define_task(), or start a worker that declares it.';
    END IF;
    RETURN v_task;
END
$$;
