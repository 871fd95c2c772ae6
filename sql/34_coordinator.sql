-- Time-driven work, called by the coordinator: promoting runs whose time
-- has come, taking back leases of silent workers and overdue attempts,
-- failing runs that waited past their schedule timeout, and history
-- maintenance. Each function caps the work of one call at p_limit rows and
-- skips rows other sessions hold, so several coordinators can never block
-- one another and a caller sees from the counts when to call again.

-- Moves runs whose run_at has passed from sluice.delayed to sluice.ready.
-- The due rows are deleted by the array of their ids. A join with the locked
-- rows became a nested loop over every delayed row for each due run when the
-- statistics counted no delayed runs, as after a VACUUM of the drained table.
CREATE FUNCTION sluice.promote_due(p_limit integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql
SET jit = off
SET enable_seqscan = off
AS $$
DECLARE
    v_now timestamptz := sluice.now();
    v_count integer;
    v_queues text[];
BEGIN
    WITH due AS (
        SELECT d.run_id FROM sluice.delayed d
        WHERE d.run_at <= v_now
        ORDER BY d.run_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), removed AS (
        DELETE FROM sluice.delayed d WHERE d.run_id = ANY (ARRAY(SELECT due.run_id FROM due)) RETURNING d.run_id
    ), promoted AS (
        -- By the array of ids, as in claim: one index probe per run in any plan.
        -- The array prunes no history partition, so the range of the ids is
        -- added: the executor then skips the partitions outside it.
        UPDATE sluice.runs r SET status = 'queued'
        WHERE r.id = ANY (ARRAY(SELECT m.run_id FROM removed m)) AND r.status = 'scheduled'
          AND r.id BETWEEN (SELECT min(m.run_id) FROM removed m) AND (SELECT max(m.run_id) FROM removed m)
        RETURNING r.id, r.queue, r.task, r.priority, r.run_at, r.attempt
    ), made_ready AS (
        INSERT INTO sluice.ready (run_id, queue, task, priority, ready_at, schedule_deadline, gated)
        SELECT p.id, p.queue, p.task, p.priority, v_now,
               CASE WHEN p.attempt = 0 THEN p.run_at + t.schedule_timeout END,
               -- Gated when enqueued, whatever the task's rules are now.
               EXISTS (SELECT FROM sluice.run_gates g WHERE g.run_id = p.id)
        FROM promoted p JOIN sluice.tasks t ON t.name = p.task
        RETURNING queue
    )
    SELECT count(*), pg_catalog.array_agg(DISTINCT m.queue) INTO v_count, v_queues FROM made_ready m;

    PERFORM sluice._wake(q) FROM unnest(v_queues) AS q;
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION sluice.promote_due(integer) IS
    'Makes up to p_limit scheduled runs whose time has come ready, and notifies their queues. Returns how many.';

-- Takes back the leases of workers that stopped heartbeating and of attempts
-- past their execution deadline; each run goes to retry or fails.
CREATE FUNCTION sluice.expire_leases(p_limit integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    v_now timestamptz := sluice.now();
    v_lease record;
    v_expired bigint[];
    v_stopped uuid[];
    v_count integer := 0;
BEGIN
    -- Workers silent for longer than their lease timeout are stopped first,
    -- so that a late heartbeat or claim from them is rejected.
    WITH stopped AS (
        UPDATE sluice.workers w
        SET stopped_at = v_now, stop_reason = format('no heartbeat since %s', w.heartbeat_at)
        WHERE w.stopped_at IS NULL AND w.heartbeat_at < v_now - w.lease_timeout
        RETURNING w.id
    )
    SELECT pg_catalog.array_agg(s.id) INTO v_stopped FROM stopped s;

    SELECT pg_catalog.array_agg(x.run_id) INTO v_expired
    FROM (SELECT l.run_id
          FROM sluice.leases l LEFT JOIN sluice.workers w ON w.id = l.worker_id
          WHERE w.id IS NULL OR w.stopped_at IS NOT NULL OR l.deadline <= v_now
          LIMIT p_limit
          FOR UPDATE OF l SKIP LOCKED) x;
    IF v_expired IS NOT NULL THEN
        PERFORM sluice._lock_gates(v_expired);

        -- The leases are deleted by the array of ids, and their workers are
        -- looked up afterwards. A join of the leases with themselves became a
        -- nested loop over every lease for each expired one when the
        -- statistics counted no leases.
        FOR v_lease IN
            WITH deleted AS (
                DELETE FROM sluice.leases l WHERE l.run_id = ANY (v_expired)
                RETURNING l.run_id, l.attempt, l.deadline, l.started_at, l.gated, l.worker_id
            )
            SELECT d.run_id, d.attempt, d.deadline, d.started_at, d.gated, w.name AS worker_name,
                   w.id AS worker_id, w.stopped_at IS NOT NULL OR w.id IS NULL AS worker_gone
            FROM deleted d LEFT JOIN sluice.workers w ON w.id = d.worker_id
        LOOP
            PERFORM sluice._retry_or_fail(v_lease.run_id, v_lease.attempt,
                CASE WHEN v_lease.worker_gone THEN
                    sluice._error_document(format('lease expired: worker %s (%s) stopped heartbeating',
                                                  coalesce(v_lease.worker_name, 'unknown'), v_lease.worker_id),
                                           'lease_expired', NULL)
                ELSE
                    sluice._error_document(format('attempt timed out after %s',
                                                  pg_catalog.date_trunc('second', v_lease.deadline - v_lease.started_at)),
                                           'timeout', NULL)
                END,
                true, v_now, v_lease.gated);
            v_count := v_count + 1;
        END LOOP;
    END IF;

    -- Last, after the gate rows: a claim by a stopped worker may hold those
    -- while it waits to mark itself waiting (claim_vs_reaper_deadlock).
    DELETE FROM sluice.waiting_workers ww WHERE ww.worker_id = ANY (v_stopped);
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION sluice.expire_leases(integer) IS
    'Stops workers whose heartbeat is older than their lease timeout and sends up to p_limit runs they held, '
    'or whose attempt passed its execution timeout, to retry or failure. Returns how many runs.';

-- Fails queued runs that waited longer than their task's schedule timeout.
-- The overdue ready rows are deleted by the array of their ids, as in
-- promote_due.
CREATE FUNCTION sluice.expire_queued(p_limit integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql
SET jit = off
SET enable_seqscan = off
AS $$
DECLARE
    v_now timestamptz := sluice.now();
    v_count integer;
    v_watched bigint[];
    v_failed bigint[];
BEGIN
    WITH overdue AS (
        SELECT r.run_id FROM sluice.ready r
        WHERE r.schedule_deadline <= v_now
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), removed AS (
        DELETE FROM sluice.ready r WHERE r.run_id = ANY (ARRAY(SELECT o.run_id FROM overdue o))
        RETURNING r.run_id, r.schedule_deadline - r.ready_at AS waited
    ), failed AS (
        UPDATE sluice.runs u
        SET status = 'failed', finished_at = v_now,
            error = sluice._error_document('schedule timeout: no worker started the run in time', 'schedule_timeout', NULL)
        WHERE u.id = ANY (ARRAY(SELECT m.run_id FROM removed m)) AND u.status = 'queued'
          AND u.id BETWEEN (SELECT min(m.run_id) FROM removed m) AND (SELECT max(m.run_id) FROM removed m)
        RETURNING u.id, u.watched
    )
    SELECT count(*), pg_catalog.array_agg(f.id) FILTER (WHERE f.watched), pg_catalog.array_agg(f.id)
    INTO v_count, v_watched, v_failed
    FROM failed f;

    -- Runs a concurrency key or rate limit held back time out the same way.
    WITH overdue AS (
        SELECT h.run_id FROM sluice.held h
        WHERE h.schedule_deadline <= v_now
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), failed AS (
        UPDATE sluice.runs u
        SET status = 'failed', finished_at = v_now,
            error = sluice._error_document('schedule timeout: the run waited for its concurrency key or rate limit '
                                           'past its schedule timeout', 'schedule_timeout', NULL)
        WHERE u.id = ANY (ARRAY(SELECT o.run_id FROM overdue o)) AND u.status = 'queued'
          AND u.id BETWEEN (SELECT min(o.run_id) FROM overdue o) AND (SELECT max(o.run_id) FROM overdue o)
        RETURNING u.id, u.watched
    )
    SELECT v_count + count(*), v_watched || pg_catalog.array_agg(f.id) FILTER (WHERE f.watched),
           v_failed || pg_catalog.array_agg(f.id)
    INTO v_count, v_watched, v_failed
    FROM failed f;

    IF v_failed IS NOT NULL THEN
        PERFORM sluice._close_gates(v_failed);
    END IF;
    PERFORM pg_catalog.pg_notify('sluice_finished', w::text) FROM unnest(v_watched) AS w;
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION sluice.expire_queued(integer) IS
    'Fails up to p_limit queued runs that waited past their task''s schedule_timeout. Returns how many.';

-- PL/pgSQL rather than SQL because sluice.schedules is created by a later
-- file (50_schedules.sql), and a SQL function body is checked at creation.
CREATE FUNCTION sluice.next_due_at() RETURNS timestamptz
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN least(
        -- The earliest times are read in index order with LIMIT 1, because
        -- statistics that counted no rows made min() over a whole index look
        -- as cheap.
        (SELECT d.run_at FROM sluice.delayed d ORDER BY d.run_at LIMIT 1),
        (SELECT min(l.deadline) FROM sluice.leases l),
        -- OFFSET 0 keeps one probe of the worker's leases per worker, not a
        -- semi-join that read every lease for each worker.
        (SELECT min(w.heartbeat_at + w.lease_timeout) FROM sluice.workers w
         WHERE w.stopped_at IS NULL AND EXISTS (SELECT FROM sluice.leases l WHERE l.worker_id = w.id OFFSET 0)),
        (SELECT r.schedule_deadline FROM sluice.ready r WHERE r.schedule_deadline IS NOT NULL
         ORDER BY r.schedule_deadline LIMIT 1),
        (SELECT min(s.next_fire_at) FROM sluice.schedules s WHERE NOT s.paused),
        (SELECT h.schedule_deadline FROM sluice.held h WHERE h.schedule_deadline IS NOT NULL
         ORDER BY h.schedule_deadline LIMIT 1),
        (SELECT b.next_release_at FROM sluice.rate_limits b WHERE b.held > 0 ORDER BY b.next_release_at LIMIT 1),
        -- While runs wait for concurrency slots, look once a second for a
        -- slot no completion handed over.
        (SELECT sluice.now() + interval '1 second' WHERE EXISTS (SELECT FROM sluice.held h WHERE h.kind = 'concurrency')));
END
$$;

COMMENT ON FUNCTION sluice.next_due_at() IS
    'Returns the earliest time at which tick() has work: a scheduled run, an execution deadline, a worker''s '
    'lease expiry, a schedule timeout, a cron schedule''s fire time or a rate limit refill for held runs. '
    'NULL when nothing is waiting for a time.';

CREATE FUNCTION sluice.tick(p_limit integer DEFAULT 1000)
RETURNS TABLE (promoted integer, expired integer, timed_out integer, next_due_at timestamptz, fired integer,
               released integer)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    PERFORM sluice._check_range('p_limit', p_limit, 1, 100000);
    -- Lease expiry waits for slot and bucket rows in the documented order, so
    -- it comes before the releases, which keep the rows they lock. After them
    -- it waited for a slot row while holding a bucket row, and deadlocked with
    -- a claim that held the slot row and waited for the bucket.
    expired := sluice.expire_leases(p_limit);
    released := sluice.release_rate_held(p_limit) + sluice.release_concurrency_held(p_limit);
    promoted := sluice.promote_due(p_limit);
    timed_out := sluice.expire_queued(p_limit);
    fired := sluice.fire_due_schedules(p_limit);
    next_due_at := sluice.next_due_at();
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION sluice.tick(integer) IS
    'Does the coordinator''s time-driven work once (release_rate_held, release_concurrency_held, promote_due, '
    'expire_leases, expire_queued, fire_due_schedules, each up to p_limit rows) and returns the counts and when '
    'to call again. A count equal to p_limit means more work is waiting.';
