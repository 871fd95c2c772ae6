-- Flow control: concurrency keys, rate limits, slot costs and worker
-- affinity, all decided inside the claim path so that a worker in any
-- language gets the same guarantees.
--
-- Concurrency. A task declares rules {"key", "max", "strategy"}. The key is
-- an SQL/JSON path over the input when it starts with '$' (the metadata is
-- the path variable $metadata), otherwise a constant. At enqueue every rule's
-- key is computed into sluice.run_gates. A slot row in
-- sluice.concurrency_slots counts the runs of each key that started and have
-- not finished; a claim starts a run only while running < max for every
-- rule, so the count can never pass the maximum: the slot row is locked by
-- every transaction that changes it. Strategies:
--   group_round_robin   runs beyond the maximum wait in sluice.held, per key.
--                       A finishing run hands its slot to the next waiting
--                       run of its own key, so a key with many waiting runs
--                       never delays another key.
--   cancel_in_progress  a new run for a full key cancels the oldest live
--                       runs of that key at enqueue.
--   cancel_newest       a new run for a full key is created cancelled.
--   For the two cancel strategies "full" counts every live run of the key
--   (queued or running), decided at enqueue under a transaction advisory
--   lock on the key, so concurrent enqueues for one key wait for each
--   other's commit.
--
-- Rate limits. Token buckets in sluice.rate_limits: max_units per period,
-- refilled continuously at max_units / period, holding at most max_units.
-- Static buckets are created with set_rate_limit(); dynamic ones come from a
-- task rule {"key": "$.path", "limit", "period"} and are created on first
-- use. A claim takes a run's units from every bucket it names; a run that
-- finds too few tokens waits in sluice.held, and the coordinator moves it
-- back to sluice.ready when its bucket will have refilled (tick ->
-- release_rate_held). Tokens are taken when a run starts, so a backlog
-- drains at the set rate after a pause, a restart or a limit change.
--
-- Lock order, added to the queue-table-then-run order of the core:
-- concurrency_slots rows in gate_key order, then rate_limits rows in key
-- order. Every transaction that needs several of these rows locks them all
-- up front in that order: claim, fail, lease expiry and stop_worker. Complete
-- and cancel release theirs in one sorted pass. A transaction holding slot
-- rows waits for a run row only when it already holds that run's queue-table
-- row, so slot rows and run rows cannot wait on each other in a cycle. The
-- exception is a transaction that enqueues twice for one cancel_in_progress
-- key (see the NOTE in _open_gates).

-- Evaluates a key expression against a run's input and metadata. Returns
-- NULL when a path matches nothing.
CREATE FUNCTION sluice._gate_value(p_expression text, p_input jsonb, p_metadata jsonb) RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_value jsonb;
BEGIN
    IF pg_catalog.left(p_expression, 1) <> '$' THEN
        RETURN p_expression;
    END IF;
    v_value := pg_catalog.jsonb_path_query_first(p_input, p_expression::jsonpath,
                                                 pg_catalog.jsonb_build_object('metadata', p_metadata));
    IF v_value IS NULL OR v_value = 'null' THEN
        RETURN NULL;
    END IF;
    RETURN CASE WHEN pg_catalog.jsonb_typeof(v_value) = 'string' THEN v_value #>> '{}' ELSE v_value::text END;
END
$$;

-- Names the document a key path reads, for error messages: paths that start
-- with the variable $metadata read the run's metadata, others its input.
CREATE FUNCTION sluice._path_document(p_expression text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE WHEN p_expression = '$metadata' OR p_expression LIKE '$metadata.%' THEN 'metadata' ELSE 'input' END
$$;

-- Raises SL004 unless p_expression is a constant or a valid SQL/JSON path.
CREATE FUNCTION sluice._check_key_expression(p_option text, p_expression jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_expression IS NULL OR pg_catalog.jsonb_typeof(p_expression) <> 'string' OR p_expression #>> '{}' = '' THEN
        PERFORM sluice._invalid_option(p_option, coalesce(p_expression::text, 'missing'),
            'A key is a non-empty string: an SQL/JSON path such as "$.user_id", or a constant.');
    END IF;
    IF pg_catalog.left(p_expression #>> '{}', 1) = '$' THEN
        BEGIN
            PERFORM (p_expression #>> '{}')::jsonpath;
        EXCEPTION WHEN syntax_error OR invalid_text_representation THEN
            RAISE EXCEPTION 'invalid %: % is not a valid SQL/JSON path', p_option, p_expression
                USING ERRCODE = 'SL004', DETAIL = SQLERRM,
                      HINT = 'Use a path such as "$.user_id" or "$metadata.tenant".';
        END;
    END IF;
    RETURN p_expression #>> '{}';
END
$$;

-- Accepts one rule object or an array of them; returns an array.
CREATE FUNCTION sluice._rule_array(p_option text, p_rules jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_rules IS NULL THEN
        RETURN '[]';
    ELSIF pg_catalog.jsonb_typeof(p_rules) = 'object' THEN
        RETURN pg_catalog.jsonb_build_array(p_rules);
    ELSIF pg_catalog.jsonb_typeof(p_rules) = 'array'
          AND NOT EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(p_rules) e
                          WHERE pg_catalog.jsonb_typeof(e) <> 'object') THEN
        RETURN p_rules;
    END IF;
    PERFORM sluice._invalid_option(p_option, pg_catalog.left(p_rules::text, 60),
                                   format('%s is a JSON object or an array of objects.', p_option));
    RETURN NULL;
END
$$;

-- Reads a positive integer field of a rule, raising SL004 naming it.
CREATE FUNCTION sluice._rule_integer(p_option text, p_rule jsonb, p_field text, p_default integer,
                                     p_max integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_value jsonb := p_rule -> p_field;
BEGIN
    IF v_value IS NULL THEN
        IF p_default IS NULL THEN
            PERFORM sluice._invalid_option(format('%s %s', p_option, p_field), 'missing',
                                           format('Each %s rule needs "%s", an integer from 1 to %s.', p_option, p_field, p_max));
        END IF;
        RETURN p_default;
    END IF;
    IF pg_catalog.jsonb_typeof(v_value) <> 'number' OR v_value::numeric <> trunc(v_value::numeric)
       OR v_value::numeric < 1 OR v_value::numeric > p_max THEN
        PERFORM sluice._invalid_option(format('%s %s', p_option, p_field), v_value::text,
                                       format('"%s" is an integer from 1 to %s.', p_field, p_max));
    END IF;
    RETURN v_value::integer;
END
$$;

-- Validates concurrency rules and returns them with every field filled in.
CREATE FUNCTION sluice._normalize_concurrency(p_rules jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_rule jsonb;
    v_result jsonb := '[]';
    v_strategy text;
BEGIN
    FOR v_rule IN SELECT e FROM pg_catalog.jsonb_array_elements(sluice._rule_array('concurrency', p_rules)) e LOOP
        v_strategy := coalesce(v_rule ->> 'strategy', 'group_round_robin');
        IF v_strategy NOT IN ('group_round_robin', 'cancel_in_progress', 'cancel_newest') THEN
            PERFORM sluice._invalid_option('concurrency strategy', pg_catalog.quote_literal(v_strategy),
                'The strategies are group_round_robin, cancel_in_progress and cancel_newest.');
        END IF;
        v_result := v_result || pg_catalog.jsonb_build_object(
            'key', sluice._check_key_expression('concurrency key', v_rule -> 'key'),
            'max', sluice._rule_integer('concurrency', v_rule, 'max', NULL, 100000),
            'strategy', v_strategy);
    END LOOP;
    RETURN v_result;
END
$$;

CREATE FUNCTION sluice._period_interval(p_period text) RETURNS interval
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RETURN CASE p_period WHEN 'second' THEN interval '1 second' WHEN 'minute' THEN interval '1 minute'
                         WHEN 'hour' THEN interval '1 hour' WHEN 'day' THEN interval '1 day' END;
END
$$;

-- Raises SL004 unless p_period names a rate limit period.
CREATE FUNCTION sluice._check_period(p_period text) RETURNS interval
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF sluice._period_interval(p_period) IS NULL THEN
        PERFORM sluice._invalid_option('rate limit period', pg_catalog.quote_literal(coalesce(p_period, 'NULL')),
                                       'The periods are second, minute, hour and day.');
    END IF;
    RETURN sluice._period_interval(p_period);
END
$$;

-- Validates rate limit rules: {"key": "name"} for a static limit (which
-- must exist), or {"key": "$.path" or "name", "limit": N, "period": "minute"}
-- for a dynamic one, each with "units": N or "$.path" (default 1).
CREATE FUNCTION sluice._normalize_rate_limits(p_rules jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_rule jsonb;
    v_result jsonb := '[]';
    v_key text;
    v_limit integer;
    v_units jsonb;
    v_static sluice.rate_limits;
BEGIN
    FOR v_rule IN SELECT e FROM pg_catalog.jsonb_array_elements(sluice._rule_array('rate_limits', p_rules)) e LOOP
        v_key := sluice._check_key_expression('rate limit key', v_rule -> 'key');
        IF v_rule ? 'limit' OR v_rule ? 'period' THEN
            v_limit := sluice._rule_integer('rate limit', v_rule, 'limit', NULL, 1000000000);
            PERFORM sluice._check_period(coalesce(v_rule ->> 'period', 'missing'));
        ELSE
            SELECT * INTO v_static FROM sluice.rate_limits r WHERE r.key = v_key AND NOT r.dynamic;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'rate limit % does not exist', pg_catalog.quote_literal(v_key)
                    USING ERRCODE = 'SL004',
                          HINT = 'Create it with sluice.set_rate_limit(), or give "limit" and "period" for a dynamic limit.';
            END IF;
            v_limit := v_static.max_units;
        END IF;
        v_units := coalesce(v_rule -> 'units', '1');
        IF pg_catalog.jsonb_typeof(v_units) = 'string' THEN
            PERFORM sluice._check_key_expression('rate limit units', v_units);
        ELSE
            PERFORM sluice._rule_integer('rate limit', v_rule || pg_catalog.jsonb_build_object('units', v_units),
                                         'units', 1, 1000000000);
            IF v_units::integer > v_limit THEN
                RAISE EXCEPTION 'rate limit units % exceed the limit of % for key %', v_units, v_limit,
                                pg_catalog.quote_literal(v_key)
                    USING ERRCODE = 'SL004', DETAIL = 'A run that takes more units than the bucket holds could never start.';
            END IF;
        END IF;
        v_result := v_result || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'key', v_key, 'units', v_units,
            'limit', CASE WHEN v_rule ? 'limit' THEN v_limit END,
            'period', v_rule -> 'period'));
    END LOOP;
    RETURN v_result;
END
$$;

-- Validates affinity rules: {"label", "op", "value", "required", "weight"}.
CREATE FUNCTION sluice._normalize_affinity(p_rules jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_rule jsonb;
    v_result jsonb := '[]';
    v_op text;
BEGIN
    FOR v_rule IN SELECT e FROM pg_catalog.jsonb_array_elements(sluice._rule_array('affinity', p_rules)) e LOOP
        IF pg_catalog.jsonb_typeof(v_rule -> 'label') IS DISTINCT FROM 'string' THEN
            PERFORM sluice._invalid_option('affinity label', coalesce((v_rule -> 'label')::text, 'missing'),
                                           'Each affinity rule names a worker label as a string.');
        END IF;
        v_op := coalesce(v_rule ->> 'op', '=');
        v_op := CASE v_op WHEN 'eq' THEN '=' WHEN 'ne' THEN '!=' WHEN '<>' THEN '!=' WHEN 'gt' THEN '>'
                          WHEN 'ge' THEN '>=' WHEN 'lt' THEN '<' WHEN 'le' THEN '<=' ELSE v_op END;
        IF v_op NOT IN ('=', '!=', '>', '>=', '<', '<=') THEN
            PERFORM sluice._invalid_option('affinity comparator', pg_catalog.quote_literal(v_rule ->> 'op'),
                                           'The comparators are =, !=, >, >=, < and <= (or eq, ne, gt, ge, lt, le).');
        END IF;
        IF pg_catalog.jsonb_typeof(v_rule -> 'value') NOT IN ('string', 'number') OR v_rule -> 'value' IS NULL THEN
            PERFORM sluice._invalid_option('affinity value', coalesce((v_rule -> 'value')::text, 'missing'),
                                           'An affinity value is a string or a number.');
        END IF;
        IF v_rule ? 'required' AND pg_catalog.jsonb_typeof(v_rule -> 'required') <> 'boolean' THEN
            PERFORM sluice._invalid_option('affinity required', (v_rule -> 'required')::text, '"required" is true or false.');
        END IF;
        v_result := v_result || pg_catalog.jsonb_build_object(
            'label', v_rule ->> 'label', 'op', v_op, 'value', v_rule -> 'value',
            'required', coalesce((v_rule ->> 'required')::boolean, false),
            'weight', sluice._rule_integer('affinity', v_rule, 'weight', 1, 1000));
    END LOOP;
    RETURN v_result;
END
$$;

-- True when a worker's labels satisfy one affinity rule. A missing label
-- never matches; numbers compare as numbers, anything else as text.
CREATE FUNCTION sluice._label_matches(p_labels jsonb, p_rule jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_label jsonb := p_labels -> (p_rule ->> 'label');
    v_wanted jsonb := p_rule -> 'value';
    v_order integer;
BEGIN
    IF v_label IS NULL OR v_label = 'null' THEN
        RETURN false;
    END IF;
    IF pg_catalog.jsonb_typeof(v_label) = 'number' AND pg_catalog.jsonb_typeof(v_wanted) = 'number' THEN
        v_order := sign(v_label::numeric - v_wanted::numeric);
    ELSE
        v_order := CASE WHEN (v_label #>> '{}') < (v_wanted #>> '{}') THEN -1
                        WHEN (v_label #>> '{}') > (v_wanted #>> '{}') THEN 1 ELSE 0 END;
    END IF;
    RETURN CASE p_rule ->> 'op'
        WHEN '=' THEN v_order = 0 WHEN '!=' THEN v_order <> 0
        WHEN '>' THEN v_order > 0 WHEN '>=' THEN v_order >= 0
        WHEN '<' THEN v_order < 0 WHEN '<=' THEN v_order <= 0 END;
END
$$;

-- Sum of the weights of the preferred (not required) rules a worker meets,
-- or NULL when it misses a required one.
CREATE FUNCTION sluice._affinity_score(p_affinity jsonb, p_labels jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE WHEN bool_and(sluice._label_matches(p_labels, r) OR NOT (r ->> 'required')::boolean)
                     IS DISTINCT FROM false
                THEN coalesce(sum((r ->> 'weight')::integer) FILTER (
                         WHERE NOT (r ->> 'required')::boolean AND sluice._label_matches(p_labels, r)), 0)::integer
           END
    FROM pg_catalog.jsonb_array_elements(p_affinity) r
$$;

-- Returns the tasks of worker p_worker that a claim may start on it now:
-- those whose required labels it has, minus those a live worker with a
-- higher affinity score and enough free slots should take instead.
CREATE FUNCTION sluice._claimable_tasks(p_worker sluice.workers, p_now timestamptz) RETURNS text[]
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(pg_catalog.array_agg(t.name), '{}')
    FROM sluice.tasks t
    CROSS JOIN LATERAL (SELECT sluice._affinity_score(t.affinity, p_worker.labels) AS score) mine
    WHERE t.name = ANY (p_worker.tasks)
      AND mine.score IS NOT NULL
      AND NOT (t.affinity @? '$[*] ? (@.required == false)'
               AND EXISTS (
                   SELECT FROM sluice.workers w
                   WHERE w.id <> p_worker.id AND w.stopped_at IS NULL
                     AND w.heartbeat_at > p_now - w.lease_timeout
                     AND t.name = ANY (w.tasks)
                     AND sluice._affinity_score(t.affinity, w.labels) > mine.score
                     AND w.slots - sluice._slots_in_use(w.id) >= t.slot_cost))
$$;

-- Computes the gates of a new run of a gated task into sluice.run_gates and
-- applies the cancel strategies. Returns 'ready' when the run may wait in
-- the ready queue, 'cancelled' when it must be created cancelled
-- (cancel_newest on a full key), or else the gate key of a saturated
-- group_round_robin key it should wait on in sluice.held.
--
-- Its statements read run_gates by key. A session keeps the plans of its
-- first calls, and on a fresh database those were planned for an empty table:
-- a sequential scan, whose cost then grew with every run. In the first
-- enqueue_many of 50,000 keyed runs, counting a key's live runs took 0.52 ms
-- a run on average, and the batch 29 s (bench/RESULTS.md). So sequential
-- scans are turned off here, as in _lock_gates, and the planner uses the
-- gate_key index whatever the table's size was when it planned.
CREATE FUNCTION sluice._open_gates(p_task sluice.tasks, p_run_id bigint, p_input jsonb, p_metadata jsonb)
RETURNS text
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    v_rule jsonb;
    v_position integer := 0;
    v_value text;
    v_gate_key text;
    v_units integer;
    v_limit integer;
    v_live integer;
    v_victims bigint[];
    v_victim bigint;
    v_cancelling jsonb := '[]';
    v_parked_on text;
BEGIN
    FOR v_rule IN SELECT e FROM pg_catalog.jsonb_array_elements(p_task.concurrency) e LOOP
        v_value := sluice._gate_value(v_rule ->> 'key', p_input, p_metadata);
        IF v_value IS NULL THEN
            RAISE EXCEPTION 'concurrency key % of task % matches nothing in the %', v_rule ->> 'key',
                            pg_catalog.quote_literal(p_task.name), sluice._path_document(v_rule ->> 'key')
                USING ERRCODE = 'SL002', HINT = 'Every run of this task needs a value at that path.';
        END IF;
        v_gate_key := pg_catalog.jsonb_build_array(p_task.name, v_position, v_value)::text;
        -- A key that already has max live runs is saturated: the new run
        -- waits in sluice.held from the start instead of crowding the ready
        -- queue, which keeps every key's share of the ready queue at most
        -- its maximum. The count reads without a lock; tick() hands over a
        -- slot that this race leaves free.
        IF v_rule ->> 'strategy' = 'group_round_robin' AND v_parked_on IS NULL
           AND (SELECT count(*) FROM (SELECT FROM sluice.run_gates g
                                      WHERE g.gate_key = v_gate_key AND g.kind = 'concurrency'
                                      LIMIT (v_rule ->> 'max')::integer) live) >= (v_rule ->> 'max')::integer THEN
            v_parked_on := v_gate_key;
        END IF;
        INSERT INTO sluice.run_gates (run_id, position, kind, gate_key) VALUES (p_run_id, v_position, 'concurrency', v_gate_key);
        IF v_rule ->> 'strategy' <> 'group_round_robin' THEN
            v_cancelling := v_cancelling || pg_catalog.jsonb_build_object('gate_key', v_gate_key, 'rule', v_rule);
        END IF;
        v_position := v_position + 1;
    END LOOP;

    FOR v_rule IN SELECT e FROM pg_catalog.jsonb_array_elements(p_task.rate_limits) e LOOP
        v_value := sluice._gate_value(v_rule ->> 'key', p_input, p_metadata);
        IF v_value IS NULL THEN
            RAISE EXCEPTION 'rate limit key % of task % matches nothing in the %', v_rule ->> 'key',
                            pg_catalog.quote_literal(p_task.name), sluice._path_document(v_rule ->> 'key')
                USING ERRCODE = 'SL002', HINT = 'Every run of this task needs a value at that path.';
        END IF;
        IF pg_catalog.jsonb_typeof(v_rule -> 'units') = 'string' THEN
            BEGIN
                v_units := (sluice._gate_value(v_rule ->> 'units', p_input, p_metadata))::integer;
            EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
                RAISE EXCEPTION 'rate limit units % of task % are not a whole number in the input', v_rule ->> 'units',
                                pg_catalog.quote_literal(p_task.name)
                    USING ERRCODE = 'SL002';
            END;
        ELSE
            v_units := (v_rule ->> 'units')::integer;
        END IF;
        IF v_rule ? 'limit' THEN
            INSERT INTO sluice.rate_limits (key, max_units, period, dynamic, tokens, refilled_at)
            VALUES (v_value, (v_rule ->> 'limit')::integer, sluice._period_interval(v_rule ->> 'period'), true,
                    (v_rule ->> 'limit')::integer, sluice.now())
            ON CONFLICT ON CONSTRAINT rate_limits_pkey DO NOTHING;
        END IF;
        IF v_units IS NULL THEN
            RAISE EXCEPTION 'rate limit units % of task % match nothing in the %', v_rule ->> 'units',
                            pg_catalog.quote_literal(p_task.name), sluice._path_document(v_rule ->> 'units')
                USING ERRCODE = 'SL002', HINT = 'Every run of this task needs a whole number of units at that path.';
        END IF;
        v_limit := coalesce((v_rule ->> 'limit')::integer,
                            (SELECT r.max_units FROM sluice.rate_limits r WHERE r.key = v_value));
        IF v_units < 1 OR v_units > v_limit THEN
            RAISE EXCEPTION 'rate limit units % for key % are outside 1 to %', v_units, pg_catalog.quote_literal(v_value), v_limit
                USING ERRCODE = 'SL002', DETAIL = 'A run that takes more units than the bucket holds could never start.';
        END IF;
        INSERT INTO sluice.run_gates (run_id, position, kind, gate_key, units)
        VALUES (p_run_id, v_position, 'rate', v_value, v_units);
        v_position := v_position + 1;
    END LOOP;

    -- Cancel strategies: count the live runs of each key (every live gated
    -- run has a run_gates row) and make room or give up. Enqueues of one key
    -- take turns on a transaction advisory lock on it, so that two of them
    -- never both count the same room. It is not a row lock on purpose: the
    -- cancel of a victim waits for the victim's ready row or lease, and
    -- claims and completions that hold those wait for the key's slot row.
    -- An enqueue that held the slot row here deadlocked with them.
    --
    -- Cancelling a running run locks the slot rows of its keys until commit.
    -- So when the key is over its maximum by several runs (the maximum was
    -- lowered), the queue rows of all of them are locked first, in the order
    -- sluice.cancel uses, and only then are they cancelled one by one
    -- (cancel_in_progress_two_victims).
    -- NOTE: several enqueues in one transaction cancel one after the other.
    -- The first holds the slot row while a later one waits for its victim's
    -- rows, which a claim or completion of that victim can hold while it
    -- waits for the slot row. PostgreSQL then aborts one of them.
    FOR v_rule IN
        SELECT c FROM pg_catalog.jsonb_array_elements(v_cancelling) c ORDER BY c ->> 'gate_key'
    LOOP
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('sluice.cancel_strategy'),
                                                 pg_catalog.hashtext(v_rule ->> 'gate_key'));
        LOOP
            SELECT count(*) INTO v_live
            FROM sluice.run_gates g WHERE g.gate_key = v_rule ->> 'gate_key' AND g.kind = 'concurrency';
            EXIT WHEN v_live <= ((v_rule -> 'rule') ->> 'max')::integer;
            IF (v_rule -> 'rule') ->> 'strategy' = 'cancel_newest' THEN
                DELETE FROM sluice.run_gates g WHERE g.run_id = p_run_id;
                RETURN 'cancelled';
            END IF;
            -- The key is bounded by a range rather than compared with =, so
            -- that only run_gates_key_idx yields this order. With = the order
            -- is run_id alone, which the primary key also yields, and with
            -- statistics that counted no gates its full scan looked as cheap.
            v_victims := ARRAY(SELECT g.run_id FROM sluice.run_gates g
                               WHERE g.gate_key >= v_rule ->> 'gate_key' AND g.gate_key <= v_rule ->> 'gate_key'
                                 AND g.kind = 'concurrency' AND g.run_id <> p_run_id
                               ORDER BY g.gate_key, g.run_id
                               LIMIT v_live - ((v_rule -> 'rule') ->> 'max')::integer);
            PERFORM FROM sluice.held h WHERE h.run_id = ANY (v_victims) ORDER BY h.run_id FOR UPDATE;
            PERFORM FROM sluice.ready r WHERE r.run_id = ANY (v_victims) ORDER BY r.run_id FOR UPDATE;
            PERFORM FROM sluice.delayed d WHERE d.run_id = ANY (v_victims) ORDER BY d.run_id FOR UPDATE;
            PERFORM FROM sluice.leases l WHERE l.run_id = ANY (v_victims) ORDER BY l.run_id FOR UPDATE;
            FOREACH v_victim IN ARRAY v_victims LOOP
                PERFORM sluice.cancel(v_victim, format('cancelled by newer run %s of the same concurrency key', p_run_id));
            END LOOP;
        END LOOP;
    END LOOP;
    RETURN CASE WHEN v_parked_on IS NULL THEN 'ready' ELSE v_parked_on END;
END
$$;

-- Refills bucket p_key to p_now and returns its row, which the caller has
-- locked. Tokens grow at max_units per period, up to max_units.
CREATE FUNCTION sluice._refill(p_key text, p_now timestamptz) RETURNS sluice.rate_limits
LANGUAGE plpgsql
AS $$
DECLARE
    v_bucket sluice.rate_limits;
BEGIN
    UPDATE sluice.rate_limits r
    SET tokens = least(r.max_units::double precision,
                       r.tokens + greatest(extract(epoch FROM p_now - r.refilled_at), 0)
                                  * r.max_units / extract(epoch FROM r.period)),
        refilled_at = greatest(r.refilled_at, p_now)
    WHERE r.key = p_key
    RETURNING * INTO v_bucket;
    RETURN v_bucket;
END
$$;

-- When a bucket will hold p_units tokens again: after its pause, and after
-- refilling the missing tokens.
CREATE FUNCTION sluice._tokens_ready_at(p_bucket sluice.rate_limits, p_units integer, p_now timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE
AS $$
    SELECT greatest(coalesce(p_bucket.paused_until, p_now), p_now)
         + make_interval(secs => greatest(p_units - p_bucket.tokens, 0)
                                 * extract(epoch FROM p_bucket.period) / p_bucket.max_units)
$$;

-- Moves a ready run, whose gate p_gate_key turned it away, to sluice.held.
CREATE FUNCTION sluice._hold(p_run_id bigint, p_kind text, p_gate_key text, p_units integer, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_bucket sluice.rate_limits;
BEGIN
    INSERT INTO sluice.held (run_id, gate_key, kind, queue, task, priority, ready_at, schedule_deadline, units)
    SELECT r.run_id, p_gate_key, p_kind, r.queue, r.task, r.priority, r.ready_at, r.schedule_deadline, p_units
    FROM sluice.ready r WHERE r.run_id = p_run_id;
    DELETE FROM sluice.ready r WHERE r.run_id = p_run_id;

    IF p_kind = 'rate' THEN
        SELECT * INTO v_bucket FROM sluice.rate_limits r WHERE r.key = p_gate_key;
        UPDATE sluice.rate_limits r
        SET held = r.held + 1,
            next_release_at = least(CASE WHEN r.held > 0 THEN r.next_release_at END,
                                    sluice._tokens_ready_at(v_bucket, p_units, p_now))
        WHERE r.key = p_gate_key;
    END IF;
END
$$;

-- Checks every gate of ready run p_run_id for a claim, whose transaction
-- already holds the locks on the slot and bucket rows. On success the run
-- occupies its concurrency slots and its tokens are taken. Otherwise nothing
-- is taken, and the run moves to sluice.held under the first closed gate.
-- Buckets in p_closed_buckets turned an earlier run of the same claim away
-- and admit nothing more in it, as in _admit_single_gates.
CREATE FUNCTION sluice._pass_gates(p_run_id bigint, p_now timestamptz, p_closed_buckets text[]) RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_gate sluice.run_gates;
    v_admitted boolean;
    v_taken sluice.run_gates[] := '{}';
BEGIN
    FOR v_gate IN SELECT * FROM sluice.run_gates g WHERE g.run_id = p_run_id ORDER BY g.position LOOP
        IF v_gate.kind = 'concurrency' THEN
            -- One statement takes the slot when the key has room.
            UPDATE sluice.concurrency_slots s SET running = s.running + 1
            WHERE s.gate_key = v_gate.gate_key AND s.running < s.max_running;
            IF NOT FOUND THEN
                PERFORM sluice._undo_gates(v_taken);
                PERFORM sluice._hold(p_run_id, 'concurrency', v_gate.gate_key, 1, p_now);
                RETURN false;
            END IF;
        ELSE
            -- One statement refills the bucket and takes the units when they
            -- are there, the limit is not paused and the bucket is not closed.
            UPDATE sluice.rate_limits r
            SET tokens = v.refilled - CASE WHEN v.admitted THEN v_gate.units ELSE 0 END,
                refilled_at = greatest(r.refilled_at, p_now)
            FROM (SELECT b.key, c.refilled,
                         c.refilled >= v_gate.units AND NOT coalesce(b.paused_until > p_now, false)
                         AND b.key <> ALL (p_closed_buckets) AS admitted
                  FROM sluice.rate_limits b
                  CROSS JOIN LATERAL (
                      SELECT least(b.max_units::double precision,
                                   b.tokens + greatest(extract(epoch FROM p_now - b.refilled_at), 0)
                                              * b.max_units / extract(epoch FROM b.period)) AS refilled) c
                  WHERE b.key = v_gate.gate_key) v
            WHERE r.key = v.key
            RETURNING v.admitted INTO v_admitted;
            -- A static limit deleted after the run was enqueued no longer limits it.
            CONTINUE WHEN NOT FOUND;
            IF NOT v_admitted THEN
                PERFORM sluice._undo_gates(v_taken);
                PERFORM sluice._hold(p_run_id, 'rate', v_gate.gate_key, v_gate.units, p_now);
                RETURN false;
            END IF;
        END IF;
        v_taken := v_taken || v_gate;
    END LOOP;
    RETURN true;
END
$$;

-- Gives back what _pass_gates took before a later gate turned the run away.
CREATE FUNCTION sluice._undo_gates(p_taken sluice.run_gates[]) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_gate sluice.run_gates;
BEGIN
    FOREACH v_gate IN ARRAY p_taken LOOP
        IF v_gate.kind = 'concurrency' THEN
            UPDATE sluice.concurrency_slots s SET running = s.running - 1 WHERE s.gate_key = v_gate.gate_key;
        ELSE
            UPDATE sluice.rate_limits r SET tokens = r.tokens + v_gate.units WHERE r.key = v_gate.gate_key;
        END IF;
    END LOOP;
END
$$;

-- Creates the missing slot rows of concurrency gate keys, in key order. Slot
-- rows are created here, by claims, rather than at enqueue: two enqueues
-- creating the same new keys in different orders would wait on each other's
-- uncommitted inserts until the deadlock detector stepped in.
--
-- A run keeps the gates it was enqueued with. When the task has no rule at
-- a key's position any more (a deploy removed it), the key's row gets no
-- limit, so that the run starts instead of failing every claim of its worker.
--
-- OFFSET 0 keeps the existence check one primary key probe per key. As an
-- anti-join, statistics that counted no slot rows made a full scan of the
-- primary key look as cheap, and every claim of a new key read all slot rows.
CREATE FUNCTION sluice._ensure_slots(p_gate_keys text[]) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO sluice.concurrency_slots (gate_key, task, rule, key, max_running)
    SELECT k.gate_key, k.parts ->> 0, (k.parts ->> 1)::smallint, k.parts ->> 2,
           coalesce((t.concurrency -> ((k.parts ->> 1)::integer) ->> 'max')::integer, 2147483647)
    FROM (SELECT DISTINCT g AS gate_key, g::jsonb AS parts FROM unnest(p_gate_keys) AS g) k
    JOIN sluice.tasks t ON t.name = k.parts ->> 0
    WHERE NOT EXISTS (SELECT FROM sluice.concurrency_slots s WHERE s.gate_key = k.gate_key OFFSET 0)
    ORDER BY k.gate_key
    ON CONFLICT ON CONSTRAINT concurrency_slots_pkey DO NOTHING;
END
$$;

-- Locks, in the documented order, the slot and bucket rows the gated runs
-- p_run_ids need, so that a transaction never waits for one of these rows
-- while holding a later one. Slot rows are created first when a key has
-- none yet; most claims find them all and skip that insert. Without p_wait
-- nothing waits: rows locked by another transaction, or a missing slot row,
-- make it return false, having locked only some of the rows.
--
-- This function, _admit_single_gates and _free_slots read a few slot rows
-- by key on every claim and completion. With a thousand keys the planner
-- read the whole slot table instead, through a hash join or a filter over
-- every row. That took 0.5 ms per statement, three statements per batch,
-- and grows with the number of keys, so they turn sequential scans off.
CREATE FUNCTION sluice._lock_gates(p_run_ids bigint[], p_wait boolean DEFAULT true) RETURNS boolean
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    v_slot_keys text[];
    v_bucket_keys text[];
    v_locked integer;
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT g.gate_key) FILTER (WHERE g.kind = 'concurrency'),
           pg_catalog.array_agg(DISTINCT g.gate_key) FILTER (WHERE g.kind = 'rate')
    INTO v_slot_keys, v_bucket_keys
    FROM sluice.run_gates g WHERE g.run_id = ANY (p_run_ids);
    IF v_slot_keys IS NOT NULL THEN
        -- The keys are distinct. Counting by = ANY keeps a plan of one index
        -- probe per key, with or without statistics. An anti-join planned
        -- while the table was empty, as on a fresh database, compared every
        -- key with every slot row for as long as the session kept the plan:
        -- 2.3 ms per claim with 1,000 keys (bench/RESULTS.md).
        IF (SELECT count(*) FROM sluice.concurrency_slots s WHERE s.gate_key = ANY (v_slot_keys))
           < pg_catalog.cardinality(v_slot_keys) THEN
            IF NOT p_wait THEN
                -- Creating a slot row can wait for another transaction's insert.
                RETURN false;
            END IF;
            PERFORM sluice._ensure_slots(v_slot_keys);
        END IF;
        IF p_wait THEN
            PERFORM FROM sluice.concurrency_slots s WHERE s.gate_key = ANY (v_slot_keys) ORDER BY s.gate_key FOR UPDATE;
        ELSE
            SELECT count(*) INTO v_locked
            FROM (SELECT FROM sluice.concurrency_slots s WHERE s.gate_key = ANY (v_slot_keys)
                  ORDER BY s.gate_key FOR UPDATE SKIP LOCKED) l;
            IF v_locked < pg_catalog.cardinality(v_slot_keys) THEN
                RETURN false;
            END IF;
        END IF;
    END IF;
    IF v_bucket_keys IS NOT NULL THEN
        IF p_wait THEN
            PERFORM FROM sluice.rate_limits r WHERE r.key = ANY (v_bucket_keys) ORDER BY r.key FOR UPDATE;
        ELSE
            -- A static limit deleted since enqueue has no row and needs no lock.
            SELECT count(*) INTO v_locked
            FROM (SELECT FROM sluice.rate_limits r WHERE r.key = ANY (v_bucket_keys)
                  ORDER BY r.key FOR UPDATE SKIP LOCKED) l;
            IF v_locked < (SELECT count(*) FROM sluice.rate_limits r WHERE r.key = ANY (v_bucket_keys)) THEN
                RETURN false;
            END IF;
        END IF;
    END IF;
    RETURN true;
END
$$;

-- Admits gated claim candidates p_run_ids (in claim order) that each have
-- exactly one gate, in one pass instead of one _pass_gates call per run.
-- Per concurrency key the first max_running - running candidates take a
-- slot. Per rate limit bucket, refilled to p_now, candidates take their
-- units in claim order while the tokens last. The first that finds too few
-- stops the bucket for the runs behind it, so a run needing many units is
-- not overtaken by smaller ones. Candidates not admitted move to
-- sluice.held, as do the candidates of buckets in p_closed_buckets, which
-- turned a run away earlier in the same claim. The caller holds the slot
-- and bucket rows' locks. Returns
-- the admitted ids, or NULL without changing anything when some candidate
-- has several gates; _pass_gates checks those run by run.
CREATE FUNCTION sluice._admit_single_gates(p_run_ids bigint[], p_now timestamptz, p_closed_buckets text[])
RETURNS bigint[]
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_nestloop = off
AS $$
DECLARE
    v_gates sluice.run_gates[];
    v_slot_keys text[];
    v_bucket_keys text[];
    v_admitted bigint[];
BEGIN
    -- One primary key probe per candidate (OFFSET 0 keeps the lookup a
    -- subquery). As a join, statistics that counted no gates made a nested
    -- loop over every gate look as cheap, and a drain fell to 600 runs/s.
    --
    -- Every read of the slot and bucket rows below is bounded by the arrays
    -- of their keys, and nested loops are off, so the joins read only the
    -- batch's rows. An ANALYZE while a claim's new slot rows were uncommitted
    -- counted no slot rows. Nested loops over every slot row then looked as
    -- cheap as a probe per key, and a keyed drain fell from 19,208 to 1,955
    -- runs/s.
    SELECT pg_catalog.array_agg(g.gate ORDER BY c.n),
           pg_catalog.array_agg(DISTINCT g.gate_key) FILTER (WHERE g.kind = 'concurrency'),
           pg_catalog.array_agg(DISTINCT g.gate_key) FILTER (WHERE g.kind = 'rate')
    INTO v_gates, v_slot_keys, v_bucket_keys
    FROM unnest(p_run_ids) WITH ORDINALITY AS c(run_id, n)
    CROSS JOIN LATERAL (SELECT g AS gate, g.kind, g.gate_key FROM sluice.run_gates g
                        WHERE g.run_id = c.run_id OFFSET 0) g;
    IF coalesce(pg_catalog.cardinality(v_gates), 0) <> pg_catalog.cardinality(p_run_ids)
       OR (SELECT count(DISTINCT g.run_id) FROM unnest(v_gates) g) <> pg_catalog.cardinality(p_run_ids) THEN
        RETURN NULL;
    END IF;

    WITH gate AS (
        SELECT g.run_id, g.kind, g.gate_key, g.units, g.n
        FROM unnest(v_gates) WITH ORDINALITY AS g(run_id, position, kind, gate_key, units, n)
    ), slot_admitted AS (
        SELECT r.run_id, r.gate_key
        FROM (SELECT g.run_id, g.gate_key, row_number() OVER (PARTITION BY g.gate_key ORDER BY g.n) AS rank
              FROM gate g WHERE g.kind = 'concurrency') r
        JOIN sluice.concurrency_slots s ON s.gate_key = r.gate_key
        WHERE s.gate_key = ANY (v_slot_keys) AND r.rank <= s.max_running - s.running
    ), bucket AS (
        SELECT b.key, coalesce(b.paused_until > p_now, false) AS paused,
               least(b.max_units::double precision,
                     b.tokens + greatest(extract(epoch FROM p_now - b.refilled_at), 0)
                                * b.max_units / extract(epoch FROM b.period)) AS refilled
        FROM sluice.rate_limits b
        WHERE b.key = ANY (v_bucket_keys)
    ), token_admitted AS (
        -- A static limit deleted after the run was enqueued no longer limits it.
        SELECT r.run_id, r.gate_key, r.units
        FROM (SELECT g.run_id, g.gate_key, g.units, sum(g.units) OVER (PARTITION BY g.gate_key ORDER BY g.n) AS needed
              FROM gate g WHERE g.kind = 'rate') r
        LEFT JOIN bucket b ON b.key = r.gate_key
        WHERE b.key IS NULL OR (NOT b.paused AND b.key <> ALL (p_closed_buckets) AND r.needed <= b.refilled)
    ), slots_taken AS (
        UPDATE sluice.concurrency_slots s SET running = s.running + a.slots
        FROM (SELECT a.gate_key, count(*)::integer AS slots FROM slot_admitted a GROUP BY a.gate_key) a
        WHERE s.gate_key = ANY (v_slot_keys) AND s.gate_key = a.gate_key
    ), tokens_taken AS (
        UPDATE sluice.rate_limits r
        SET tokens = b.refilled - coalesce(t.units, 0), refilled_at = greatest(r.refilled_at, p_now)
        FROM bucket b
        LEFT JOIN (SELECT a.gate_key, sum(a.units) AS units FROM token_admitted a GROUP BY a.gate_key) t
               ON t.gate_key = b.key
        WHERE r.key = ANY (v_bucket_keys) AND r.key = b.key
    )
    SELECT coalesce(pg_catalog.array_agg(a.run_id), '{}') INTO v_admitted
    FROM (SELECT a.run_id FROM slot_admitted a UNION ALL SELECT a.run_id FROM token_admitted a) a;

    IF pg_catalog.cardinality(v_admitted) < pg_catalog.cardinality(p_run_ids) THEN
        WITH moved AS (
            DELETE FROM sluice.ready r
            WHERE r.run_id = ANY (p_run_ids) AND r.run_id <> ALL (v_admitted)
            RETURNING r.*
        ), parked AS (
            INSERT INTO sluice.held (run_id, gate_key, kind, queue, task, priority, ready_at, schedule_deadline, units)
            SELECT m.run_id, g.gate_key, g.kind, m.queue, m.task, m.priority, m.ready_at, m.schedule_deadline, g.units
            FROM moved m JOIN unnest(v_gates) g ON g.run_id = m.run_id
            RETURNING kind, gate_key, units
        )
        -- As _hold: count the waiting runs and look again when the smallest
        -- of them fits.
        UPDATE sluice.rate_limits r
        SET held = r.held + p.runs,
            next_release_at = least(CASE WHEN r.held > 0 THEN r.next_release_at END,
                                    sluice._tokens_ready_at(r, p.units, p_now))
        FROM (SELECT p.gate_key, count(*)::integer AS runs, min(p.units) AS units
              FROM parked p WHERE p.kind = 'rate' GROUP BY p.gate_key) p
        WHERE r.key = ANY (v_bucket_keys) AND r.key = p.gate_key;
    END IF;
    RETURN v_admitted;
END
$$;

-- Moves held runs p_run_ids back to sluice.ready, behind the runs already
-- there, and notifies their queues. Returns how many moved: a run that a
-- concurrent cancel took out of sluice.held does not. It reads held by run id,
-- with sequential scans off for the reason given at _open_gates.
CREATE FUNCTION sluice._make_ready(p_run_ids bigint[]) RETURNS integer
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    v_moved integer;
    v_queues text[];
BEGIN
    -- An empty array makes the condition below provably false, and the
    -- planner may then read a whole partial index of held for nothing.
    IF coalesce(pg_catalog.cardinality(p_run_ids), 0) = 0 THEN
        RETURN 0;
    END IF;
    WITH removed AS (
        DELETE FROM sluice.held h WHERE h.run_id = ANY (p_run_ids) RETURNING h.*
    ), made_ready AS (
        INSERT INTO sluice.ready (run_id, queue, task, priority, ready_at, schedule_deadline, gated)
        SELECT m.run_id, m.queue, m.task, m.priority, m.ready_at, m.schedule_deadline, true FROM removed m
        RETURNING queue
    )
    SELECT count(*), pg_catalog.array_agg(DISTINCT m.queue) INTO v_moved, v_queues FROM made_ready m;
    PERFORM sluice._wake(q) FROM unnest(v_queues) AS q;
    RETURN v_moved;
END
$$;

-- Moves up to p_count runs held by gate p_gate_key back to sluice.ready and
-- notifies their queues. Returns how many moved.
CREATE FUNCTION sluice._unhold(p_kind text, p_gate_key text, p_count integer) RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_moved integer;
BEGIN
    IF p_count <= 0 THEN
        RETURN 0;
    END IF;
    -- The kind is a constant in each query, so that the planner can use the
    -- kind's partial index also in a generic plan.
    IF p_kind = 'rate' THEN
        v_moved := sluice._make_ready(ARRAY(
            SELECT h.run_id FROM sluice.held h
            WHERE h.kind = 'rate' AND h.gate_key = p_gate_key
            ORDER BY h.priority DESC, h.run_id
            LIMIT p_count
            FOR UPDATE SKIP LOCKED));
        UPDATE sluice.rate_limits r SET held = r.held - v_moved WHERE r.key = p_gate_key;
    ELSIF p_kind = 'concurrency' THEN
        v_moved := sluice._make_ready(ARRAY(
            SELECT h.run_id FROM sluice.held h
            WHERE h.kind = 'concurrency' AND h.gate_key = p_gate_key
            ORDER BY h.priority DESC, h.run_id
            LIMIT p_count
            FOR UPDATE SKIP LOCKED));
    ELSE
        RAISE EXCEPTION 'invalid gate kind %', pg_catalog.quote_literal(p_kind)
            USING HINT = 'A gate kind is ''concurrency'' or ''rate''.';
    END IF;
    RETURN v_moved;
END
$$;

-- Frees the concurrency slots of runs p_run_ids, which just stopped running
-- or which a claim admitted and did not start. A running gated run occupies
-- one slot of each concurrency key among its gates: a claim starts a run
-- only when every gate admits it, and gives back what it took from a run it
-- turns away (_undo_gates). So the run's gates name the slots to free, and
-- no table records the holders. A second call for the same run would free
-- its slots again, so each run is freed once: by the caller that has just
-- deleted its gated lease, or by _give_back_gates for a run that got none.
CREATE FUNCTION sluice._release_slots(p_run_ids bigint[]) RETURNS void
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
BEGIN
    -- The kind is filtered in the aggregate, not in WHERE, so that the
    -- lookup by run id cannot use run_gates_key_idx.
    PERFORM sluice._free_slots((
        SELECT pg_catalog.array_agg(g.gate_key) FILTER (WHERE g.kind = 'concurrency')
        FROM sluice.run_gates g WHERE g.run_id = ANY (p_run_ids)));
END
$$;

-- Gives back what a claim took for runs p_run_ids that it admitted and then
-- did not start: a slot of each concurrency key and the units of each rate
-- limit bucket. The claim holds the locks on those rows.
CREATE FUNCTION sluice._give_back_gates(p_run_ids bigint[]) RETURNS void
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
BEGIN
    PERFORM sluice._release_slots(p_run_ids);
    UPDATE sluice.rate_limits r SET tokens = least(r.max_units, r.tokens + t.units)
    FROM (SELECT g.gate_key, sum(g.units) AS units FROM sluice.run_gates g
          WHERE g.run_id = ANY (p_run_ids) AND g.kind = 'rate'
          GROUP BY g.gate_key) t
    WHERE r.key = t.gate_key;
END
$$;

-- Frees one slot of each element of p_gate_keys, where a key appears once
-- for each run that stopped holding it, and hands each freed slot to the
-- next held run of its key. The slot rows are locked in key order first.
-- Then one statement frees the slots, and one moves the held runs that get
-- them back to sluice.ready.
CREATE FUNCTION sluice._free_slots(p_gate_keys text[]) RETURNS void
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_nestloop = off
AS $$
DECLARE
    v_keys text[];
    v_counts integer[];
    v_freed_keys text[];
    v_free integer[];
BEGIN
    SELECT pg_catalog.array_agg(f.gate_key ORDER BY f.gate_key), pg_catalog.array_agg(f.slots ORDER BY f.gate_key)
    INTO v_keys, v_counts
    FROM (SELECT k.gate_key, count(*)::integer AS slots FROM unnest(p_gate_keys) AS k(gate_key) GROUP BY k.gate_key) f;
    IF v_keys IS NULL THEN
        RETURN;
    END IF;

    PERFORM FROM sluice.concurrency_slots s WHERE s.gate_key = ANY (v_keys) ORDER BY s.gate_key FOR UPDATE;
    -- Bounded by the array of keys, as in _admit_single_gates.
    WITH freed AS (
        UPDATE sluice.concurrency_slots s SET running = s.running - f.slots
        FROM unnest(v_keys, v_counts) AS f(gate_key, slots)
        WHERE s.gate_key = ANY (v_keys) AND s.gate_key = f.gate_key
        RETURNING s.gate_key, least(f.slots, s.max_running - s.running) AS free
    )
    SELECT pg_catalog.array_agg(f.gate_key), pg_catalog.array_agg(f.free) INTO v_freed_keys, v_free FROM freed f;
    PERFORM sluice._make_ready(ARRAY(
        SELECT p.run_id
        FROM unnest(v_freed_keys, v_free) AS f(gate_key, free)
        CROSS JOIN LATERAL (SELECT h.run_id FROM sluice.held h
                            WHERE h.kind = 'concurrency' AND h.gate_key = f.gate_key
                            ORDER BY h.priority DESC, h.run_id
                            LIMIT greatest(f.free, 0)
                            FOR UPDATE SKIP LOCKED) p));
END
$$;

-- Forgets the gates of runs that reached a final state: their held row, if
-- any, and their run_gates rows. Sequential scans are off, as in _open_gates.
CREATE FUNCTION sluice._close_gates(p_run_ids bigint[]) RETURNS void
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    v_held record;
BEGIN
    FOR v_held IN DELETE FROM sluice.held h WHERE h.run_id = ANY (p_run_ids) RETURNING h.kind, h.gate_key LOOP
        IF v_held.kind = 'rate' THEN
            UPDATE sluice.rate_limits r SET held = r.held - 1 WHERE r.key = v_held.gate_key;
        END IF;
    END LOOP;
    DELETE FROM sluice.run_gates g WHERE g.run_id = ANY (p_run_ids);
END
$$;

-- Moves runs held by rate limits back to ready once their bucket has
-- refilled enough, as many as the tokens cover, and sets when to look
-- again. Buckets are visited in key order, skipping locked ones.
CREATE FUNCTION sluice.release_rate_held(p_limit integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_now timestamptz := sluice.now();
    v_key text;
    v_bucket sluice.rate_limits;
    v_count integer;
    v_covered integer;
    v_next_units integer;
    v_total integer := 0;
BEGIN
    FOR v_key IN
        SELECT r.key FROM sluice.rate_limits r
        WHERE r.held > 0 AND r.next_release_at <= v_now
        ORDER BY r.key
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        v_bucket := sluice._refill(v_key, v_now);
        IF v_bucket.paused_until > v_now THEN
            UPDATE sluice.rate_limits r SET next_release_at = r.paused_until WHERE r.key = v_key;
            CONTINUE;
        END IF;
        -- The runs whose units, taken in claim order, fit in the tokens.
        SELECT count(*), coalesce(sum(c.units), 0) INTO v_count, v_covered
        FROM (SELECT h.units, sum(h.units) OVER (ORDER BY h.priority DESC, h.run_id) AS running_total
              FROM sluice.held h WHERE h.kind = 'rate' AND h.gate_key = v_key
              ORDER BY h.priority DESC, h.run_id
              LIMIT p_limit) c
        WHERE c.running_total <= v_bucket.tokens;
        v_total := v_total + sluice._unhold('rate', v_key, v_count);

        -- Look again when the tokens promised to the released runs plus the
        -- next held run's units will have refilled.
        SELECT h.units INTO v_next_units FROM sluice.held h
        WHERE h.kind = 'rate' AND h.gate_key = v_key ORDER BY h.priority DESC, h.run_id LIMIT 1;
        UPDATE sluice.rate_limits r
        SET next_release_at = CASE WHEN v_next_units IS NULL THEN NULL
                                   ELSE sluice._tokens_ready_at(v_bucket, v_covered + v_next_units, v_now) END
        WHERE r.key = v_key;
    END LOOP;
    RETURN v_total;
END
$$;

COMMENT ON FUNCTION sluice.release_rate_held(integer) IS
    'Moves runs that rate limits held back to the ready queue when their buckets have refilled. '
    'Called by tick(); returns how many runs moved.';

-- Counts the runs of concurrency key p_gate_key waiting in sluice.ready, up
-- to p_enough. It reads the key's gates oldest first and stops at p_enough.
-- A key's running and ready runs are usually its oldest, because enqueue
-- parks the newest, so the count reads about twice the key's maximum of
-- gates however many runs wait in sluice.held. It reads further when the
-- ready runs fall short, or when priorities or scheduled runs put newer
-- runs first. In heap order it read 91 of a key's 209 gates on average
-- (bench/RESULTS.md).
--
-- The plan is pinned because other plans read far more: sorted by run id
-- alone, the primary key in order; without OFFSET 0, a merge join over all
-- of sluice.ready; with sequential or bitmap scans, every gate of the key.
-- The key is bounded by a range rather than compared with =. With = the order
-- reduces to run id alone, which the primary key also yields, and statistics
-- that counted no gates made its full scan look as cheap as the key's gates.
-- JIT compiled the count at every call for a key estimated at 120,000
-- gates. Volatile, so that it reads with a snapshot taken after its lock on
-- sluice.ready, as _slots_in_use does.
CREATE FUNCTION sluice._ready_of_key(p_gate_key text, p_enough integer) RETURNS integer
LANGUAGE sql VOLATILE
SET jit = off
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
    SELECT count(*)::integer
    FROM (SELECT FROM sluice.run_gates g
          WHERE g.gate_key >= p_gate_key AND g.gate_key <= p_gate_key AND g.kind = 'concurrency'
            AND EXISTS (SELECT FROM sluice.ready r WHERE r.run_id = g.run_id OFFSET 0)
          ORDER BY g.gate_key, g.run_id
          LIMIT greatest(p_enough, 0)) f
$$;

-- Hands free slots to held runs wherever a key has both. Completions hand
-- slots over directly, and this catches the rest. That is a raised maximum,
-- or a run an enqueue parked in sluice.held while the key's last runs
-- finished before that enqueue committed.
CREATE FUNCTION sluice.release_concurrency_held(p_limit integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql
SET jit = off
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
DECLARE
    v_slot sluice.concurrency_slots;
    v_key record;
    v_total integer := 0;
BEGIN
    -- Runs already back in ready but not yet claimed use free slots too.
    -- Only keys with room beyond them are locked, because claims wait for
    -- the slot rows this transaction has locked. With runs waiting on every key,
    -- locking them all cost a thousand needless locks a second.
    --
    -- The held check is a subquery per slot row that probes held_concurrency_idx.
    -- Without OFFSET 0 it became a semi-join or hashed subplan, and with
    -- sequential scans a scan per slot row, reading every held run. CASE
    -- counts ready runs only for keys that hold runs.
    FOR v_slot IN
        SELECT * FROM sluice.concurrency_slots s
        WHERE s.running < s.max_running
          AND CASE WHEN EXISTS (SELECT FROM sluice.held h
                                WHERE h.kind = 'concurrency' AND h.gate_key = s.gate_key OFFSET 0)
                   THEN s.running + sluice._ready_of_key(s.gate_key, s.max_running - s.running) < s.max_running
                   ELSE false END
        ORDER BY s.gate_key
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        v_total := v_total + sluice._unhold('concurrency', v_slot.gate_key,
            v_slot.max_running - v_slot.running
            - sluice._ready_of_key(v_slot.gate_key, v_slot.max_running - v_slot.running));
    END LOOP;

    -- Claims create slot rows, so a key whose ready runs all left before any
    -- claim (cancelled, or past their schedule timeout) can hold runs with no
    -- slot row, and no completion will ever hand it a slot. Nothing ran under
    -- such a key when this query read it, so its free slots are its maximum
    -- less its ready runs. A key whose rule the task no longer has is
    -- unlimited, as in _ensure_slots, and p_limit bounds it. The keys come
    -- from one held_concurrency_idx probe each, and OFFSET 0 keeps the slot
    -- check one probe per key, as in _ensure_slots. This pass inserts no slot row,
    -- because a claim creating one may wait for a slot row locked above.
    --
    -- NOTE: with several rules per task, a run moved for one key also counts
    -- toward its other keys' ready runs, as after a completion's hand-over.
    -- Those keys can exceed their maximum of ready runs, and start a newer run
    -- first, until claims turn the extra runs back. None runs over its maximum.
    FOR v_key IN
        WITH RECURSIVE held_keys(gate_key) AS (
            (SELECT h.gate_key FROM sluice.held h WHERE h.kind = 'concurrency' ORDER BY h.gate_key LIMIT 1)
            UNION ALL
            SELECT (SELECT h.gate_key FROM sluice.held h
                    WHERE h.kind = 'concurrency' AND h.gate_key > k.gate_key
                    ORDER BY h.gate_key LIMIT 1)
            FROM held_keys k WHERE k.gate_key IS NOT NULL
        )
        SELECT k.gate_key,
               least(coalesce((t.concurrency -> ((k.gate_key::jsonb ->> 1)::integer) ->> 'max')::integer,
                              2147483647),
                     p_limit) AS slots
        FROM held_keys k
        LEFT JOIN sluice.tasks t ON t.name = k.gate_key::jsonb ->> 0
        WHERE k.gate_key IS NOT NULL
          AND NOT EXISTS (SELECT FROM sluice.concurrency_slots s WHERE s.gate_key = k.gate_key OFFSET 0)
    LOOP
        EXIT WHEN v_total >= p_limit;
        v_total := v_total + sluice._unhold('concurrency', v_key.gate_key,
            v_key.slots - sluice._ready_of_key(v_key.gate_key, v_key.slots));
    END LOOP;
    RETURN v_total;
END
$$;

COMMENT ON FUNCTION sluice.release_concurrency_held(integer) IS
    'Moves held runs back to the ready queue for concurrency keys with free slots. Called by tick(); returns how many.';

-- By key and run id, so that _ready_of_key reads a key's oldest gates first.
-- Only concurrency gates are looked up by key. The predicate also keeps the
-- index away from lookups by run id, which must use the primary key: an
-- index that starts with another column can serve a condition on run_id by
-- reading all of it. A drained table keeps its pages. After a VACUUM or
-- ANALYZE that counts no live row in them, the planner estimates no rows
-- however many the table gets, and an ANALYZE does not count the rows of an
-- insert still in progress either. That full read then looks as cheap as
-- the primary key. With the index on all gates, keyed claims read all of
-- its 2.9 MB twice per batch, and a drain fell from about 8,000 to 800
-- runs/s (bench/RESULTS.md). So a query that reads gates by run id must not
-- also filter on kind = 'concurrency' in its WHERE clause (_release_slots).
CREATE INDEX run_gates_key_idx ON sluice.run_gates (gate_key, run_id) WHERE kind = 'concurrency';

-- Static rate limits.

CREATE FUNCTION sluice.set_rate_limit(key text, max_units integer, period text) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_period interval := sluice._check_period(set_rate_limit.period);
    v_now timestamptz := sluice.now();
BEGIN
    IF set_rate_limit.key IS NULL OR set_rate_limit.key = '' OR pg_catalog.left(set_rate_limit.key, 1) = '$' THEN
        PERFORM sluice._invalid_option('rate limit key', pg_catalog.quote_literal(coalesce(set_rate_limit.key, 'NULL')),
                                       'A static rate limit key is a non-empty name that does not start with $.');
    END IF;
    PERFORM sluice._check_range('max_units', set_rate_limit.max_units, 1, 1000000000);
    IF EXISTS (SELECT FROM sluice.rate_limits r WHERE r.key = set_rate_limit.key) THEN
        PERFORM sluice._refill(set_rate_limit.key, v_now);
    END IF;
    -- A changed limit applies at once, also to runs already held: they are
    -- looked at again on the next tick.
    INSERT INTO sluice.rate_limits AS r (key, max_units, period, dynamic, tokens, refilled_at)
    VALUES (set_rate_limit.key, set_rate_limit.max_units, v_period, false, set_rate_limit.max_units, v_now)
    ON CONFLICT ON CONSTRAINT rate_limits_pkey DO UPDATE
    SET max_units = excluded.max_units, period = excluded.period, dynamic = false,
        tokens = least(r.tokens, excluded.max_units),
        next_release_at = CASE WHEN r.held > 0 THEN v_now END;
    PERFORM pg_catalog.pg_notify('sluice_timer', '');
END
$$;

COMMENT ON FUNCTION sluice.set_rate_limit(text, integer, text) IS
    'Creates or changes a static rate limit: at most max_units per period (second, minute, hour or day), '
    'refilled continuously. Tasks name it with rate_limits => ''{"key": "..."}''.';

CREATE FUNCTION sluice.delete_rate_limit(key text) RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_held integer;
BEGIN
    SELECT r.held INTO v_held FROM sluice.rate_limits r WHERE r.key = delete_rate_limit.key FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM sluice._unhold('rate', delete_rate_limit.key, v_held);
    DELETE FROM sluice.rate_limits r WHERE r.key = delete_rate_limit.key;
    RETURN true;
END
$$;

COMMENT ON FUNCTION sluice.delete_rate_limit(text) IS
    'Deletes a rate limit; runs it held go back to the ready queue and it no longer limits anything. '
    'Returns false when no such limit exists.';

CREATE FUNCTION sluice.pause_rate_limit(key text, until timestamptz) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF pause_rate_limit.until IS NULL OR pause_rate_limit.until IN ('infinity', '-infinity') THEN
        PERFORM sluice._invalid_option('until', coalesce(pause_rate_limit.until::text, 'NULL'), 'until is a finite time.');
    END IF;
    UPDATE sluice.rate_limits r SET paused_until = pause_rate_limit.until,
                                    next_release_at = CASE WHEN r.held > 0 THEN pause_rate_limit.until END
    WHERE r.key = pause_rate_limit.key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rate limit % does not exist', pg_catalog.quote_literal(pause_rate_limit.key)
            USING ERRCODE = 'SL004', HINT = 'List the limits with SELECT * FROM sluice.rate_limit_status.';
    END IF;
    PERFORM pg_catalog.pg_notify('sluice_timer', '');
END
$$;

COMMENT ON FUNCTION sluice.pause_rate_limit(text, timestamptz) IS
    'Stops a rate limit from admitting runs until the given time, for example to honour an upstream Retry-After.';

CREATE FUNCTION sluice.resume_rate_limit(key text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE sluice.rate_limits r SET paused_until = NULL,
                                    next_release_at = CASE WHEN r.held > 0 THEN sluice.now() END
    WHERE r.key = resume_rate_limit.key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rate limit % does not exist', pg_catalog.quote_literal(resume_rate_limit.key)
            USING ERRCODE = 'SL004', HINT = 'List the limits with SELECT * FROM sluice.rate_limit_status.';
    END IF;
    PERFORM pg_catalog.pg_notify('sluice_timer', '');
END
$$;

COMMENT ON FUNCTION sluice.resume_rate_limit(text) IS 'Ends a pause set with pause_rate_limit().';

CREATE FUNCTION sluice.set_worker_labels(worker_id uuid, labels jsonb) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM sluice._check_payload('labels', set_worker_labels.labels, true);
    IF EXISTS (SELECT FROM pg_catalog.jsonb_each(set_worker_labels.labels) l
               WHERE pg_catalog.jsonb_typeof(l.value) NOT IN ('string', 'number')) THEN
        PERFORM sluice._invalid_option('labels', pg_catalog.left(set_worker_labels.labels::text, 60),
                                       'Label values are strings or numbers.');
    END IF;
    UPDATE sluice.workers w SET labels = set_worker_labels.labels
    WHERE w.id = set_worker_labels.worker_id AND w.stopped_at IS NULL;
    IF NOT FOUND THEN
        PERFORM sluice._live_worker(set_worker_labels.worker_id);
    END IF;
END
$$;

COMMENT ON FUNCTION sluice.set_worker_labels(uuid, jsonb) IS
    'Replaces the labels of a running worker (string or number values); affinity uses them from the next claim.';

-- Slot rows appear when a key's first run is claimed, so the keys of live
-- runs that no claim has reached yet come from sluice.run_gates.
CREATE VIEW sluice.concurrency_status AS
SELECT k.parts ->> 0 AS task, (k.parts ->> 1)::smallint AS rule, k.parts ->> 2 AS key,
       coalesce(s.max_running, (t.concurrency -> ((k.parts ->> 1)::integer) ->> 'max')::integer) AS max_running,
       coalesce(s.running, 0) AS running,
       (SELECT count(*) FROM sluice.held h WHERE h.kind = 'concurrency' AND h.gate_key = k.gate_key) AS waiting
FROM (SELECT u.gate_key, u.gate_key::jsonb AS parts
      FROM (SELECT c.gate_key FROM sluice.concurrency_slots c
            UNION
            SELECT g.gate_key FROM sluice.run_gates g WHERE g.kind = 'concurrency') u) k
JOIN sluice.tasks t ON t.name = k.parts ->> 0
LEFT JOIN sluice.concurrency_slots s ON s.gate_key = k.gate_key;

COMMENT ON VIEW sluice.concurrency_status IS
    'Per task concurrency rule and key: the maximum, the runs running and the runs waiting for a slot.';

CREATE VIEW sluice.rate_limit_status AS
SELECT r.key, r.max_units, r.period, r.dynamic,
       least(r.max_units::double precision,
             r.tokens + greatest(extract(epoch FROM sluice.now() - r.refilled_at), 0)
                        * r.max_units / extract(epoch FROM r.period)) AS available_units,
       CASE WHEN r.tokens < r.max_units
            THEN greatest(r.refilled_at, sluice.now())
                 + make_interval(secs => extract(epoch FROM r.period) / r.max_units) END AS next_refill_at,
       r.held AS waiting, r.paused_until
FROM sluice.rate_limits r;

COMMENT ON VIEW sluice.rate_limit_status IS
    'Per rate limit: its size and period, the units available now, when the next unit refills, '
    'the runs waiting and any pause.';
