-- Acting on runs: cancel, look up results, watch for completion.

-- Raises SL003 when no run has id p_run_id.
CREATE FUNCTION sluice._run_not_found(p_run_id bigint) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'run % does not exist', coalesce(p_run_id::text, 'NULL')
        USING ERRCODE = 'SL003', HINT = 'Run ids are returned by sluice.enqueue(); finished runs are removed after the retention period.';
END
$$;

CREATE FUNCTION sluice.cancel(run_id bigint, reason text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    v_now timestamptz := sluice.now();
    v_worker uuid;
    v_watched boolean;
BEGIN
    -- Queue rows first, then the run row: the lock order every function keeps.
    -- A claim that holds the ready row makes this wait, and the run is then
    -- found running with a lease, which is deleted below.
    --
    -- The held row comes first. A completion that hands its slot to this run
    -- moves it from held to ready in its own transaction. Waiting for the held
    -- row lets the ready row's delete below see that move. Otherwise a claim
    -- could start the run after the ready delete had missed it, and its lease
    -- would be invisible to the lease delete, which ran on an older snapshot.
    -- The run was then cancelled while running and its slot never released.
    PERFORM FROM sluice.held h WHERE h.run_id = cancel.run_id FOR UPDATE;
    DELETE FROM sluice.ready r WHERE r.run_id = cancel.run_id;
    DELETE FROM sluice.delayed d WHERE d.run_id = cancel.run_id;
    DELETE FROM sluice.leases l WHERE l.run_id = cancel.run_id RETURNING l.worker_id INTO v_worker;

    UPDATE sluice.runs r
    SET status = 'cancelled', finished_at = v_now, worker_id = NULL,
        error = sluice._error_document(coalesce(cancel.reason, 'cancelled'), 'cancelled', NULL)
    WHERE r.id = cancel.run_id AND r.status IN ('scheduled', 'queued', 'running')
    RETURNING r.watched INTO v_watched;

    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT FROM sluice.runs r WHERE r.id = cancel.run_id) THEN
            PERFORM sluice._run_not_found(cancel.run_id);
        END IF;
        RETURN false;
    END IF;
    IF v_worker IS NOT NULL THEN
        PERFORM sluice._release_slots(ARRAY[cancel.run_id]);
        PERFORM pg_catalog.pg_notify('sluice_cancel', cancel.run_id::text);
    END IF;
    PERFORM sluice._close_gates(ARRAY[cancel.run_id]);
    IF v_watched THEN
        PERFORM pg_catalog.pg_notify('sluice_finished', cancel.run_id::text);
    END IF;
    RETURN true;
END
$$;

COMMENT ON FUNCTION sluice.cancel(bigint, text) IS
    'Cancels a run that has not finished; a running attempt is told to stop. Returns false when the run had '
    'already finished. Raises SL003 for an unknown run id.';

CREATE FUNCTION sluice.run_result(run_id bigint)
RETURNS TABLE (status sluice.run_status, output jsonb, error jsonb, attempt integer)
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT r.status, r.output, r.error, r.attempt FROM sluice.runs r WHERE r.id = run_result.run_id;
    IF NOT FOUND THEN
        PERFORM sluice._run_not_found(run_result.run_id);
    END IF;
END
$$;

COMMENT ON FUNCTION sluice.run_result(bigint) IS
    'Returns the status, output, error and latest attempt of a run. Raises SL003 for an unknown run id.';

-- Asks for a sluice_finished notification when the run reaches a final
-- state. A caller LISTENs first, then watches: when the run had already
-- finished, the returned status says so and no notification follows.
CREATE FUNCTION sluice.watch_run(run_id bigint) RETURNS sluice.run_status
LANGUAGE plpgsql
AS $$
DECLARE
    v_status sluice.run_status;
BEGIN
    UPDATE sluice.runs r SET watched = true
    WHERE r.id = watch_run.run_id AND r.status IN ('scheduled', 'queued', 'running') AND NOT r.watched;
    SELECT r.status INTO v_status FROM sluice.runs r WHERE r.id = watch_run.run_id;
    IF NOT FOUND THEN
        PERFORM sluice._run_not_found(watch_run.run_id);
    END IF;
    RETURN v_status;
END
$$;

COMMENT ON FUNCTION sluice.watch_run(bigint) IS
    'Requests a notification on channel sluice_finished (payload: the run id) when the run reaches a final state. '
    'Returns the run''s current status. LISTEN before calling it.';
