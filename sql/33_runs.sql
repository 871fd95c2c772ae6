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
    v_held boolean;
    v_ready boolean;
    v_delayed boolean;
    v_worker uuid;
    v_lease_attempt integer;
    v_lease_gated boolean;
    v_watched boolean;
    v_status sluice.run_status;
    v_pass integer := 0;
BEGIN
    -- Queue rows first, then the run row: the lock order every function keeps.
    -- A claim that holds the ready row makes this wait, and the run is then
    -- found running with a lease, which is deleted below.
    --
    -- The held row comes first. A completion that hands its slot to this run
    -- moves it from held to ready in its own transaction. Waiting for the held
    -- row lets the ready row's delete below see that move.
    --
    -- Each statement reads with its own snapshot, so the run can move between
    -- them. A failed attempt retried with no backoff goes back to ready after
    -- the ready delete, and a claim can start it before the lease delete. The
    -- run is therefore cancelled only in the state whose queue row this pass
    -- found: deleted, or locked for a held run, and for a running run the
    -- lease of its current attempt. Otherwise the pass starts over. Cancelling
    -- it anyway would leave a lease, a ready row and a concurrency slot behind
    -- a cancelled run (cancel_vs_retry_claim). A pass that misses means the run
    -- moved during it, so after ten the cancel raises a retryable error rather
    -- than leave such a state.
    LOOP
        v_pass := v_pass + 1;
        PERFORM FROM sluice.held h WHERE h.run_id = cancel.run_id FOR UPDATE;
        v_held := FOUND;
        DELETE FROM sluice.ready r WHERE r.run_id = cancel.run_id;
        v_ready := FOUND;
        DELETE FROM sluice.delayed d WHERE d.run_id = cancel.run_id;
        v_delayed := FOUND;
        DELETE FROM sluice.leases l WHERE l.run_id = cancel.run_id RETURNING l.worker_id, l.attempt, l.gated
        INTO v_worker, v_lease_attempt, v_lease_gated;

        UPDATE sluice.runs r
        SET status = 'cancelled', finished_at = v_now, worker_id = NULL,
            error = sluice._error_document(coalesce(cancel.reason, 'cancelled'), 'cancelled', NULL)
        WHERE r.id = cancel.run_id
          AND CASE r.status
                  WHEN 'scheduled' THEN v_delayed
                  WHEN 'queued' THEN v_ready OR v_held
                  WHEN 'running' THEN r.attempt = v_lease_attempt
                  ELSE false
              END
        RETURNING r.watched INTO v_watched;
        EXIT WHEN FOUND;

        SELECT r.status INTO v_status FROM sluice.runs r WHERE r.id = cancel.run_id;
        IF NOT FOUND THEN
            PERFORM sluice._run_not_found(cancel.run_id);
        END IF;
        IF v_status NOT IN ('scheduled', 'queued', 'running') THEN
            RETURN false;
        END IF;
        IF v_pass = 10 THEN
            RAISE EXCEPTION 'run % changed state during each of 10 passes of the cancel', cancel.run_id
                USING ERRCODE = 'serialization_failure',
                      DETAIL = 'Each pass found the run in another state than the queue row it removed.',
                      HINT = 'Nothing was cancelled. Call sluice.cancel again.';
        END IF;
    END LOOP;

    IF v_worker IS NOT NULL THEN
        IF v_lease_gated THEN
            PERFORM sluice._release_slots(ARRAY[cancel.run_id]);
        END IF;
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
    'Cancels a run that has not finished, and tells a running attempt to stop. Returns false when the run had '
    'already finished. Raises SL003 for an unknown run id, and SQLSTATE 40001 when the run changed state during '
    'each of 10 passes (nothing is cancelled then, so call it again).';

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
