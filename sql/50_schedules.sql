-- Schedules: cron schedules that enqueue a run of a task at each fire time,
-- and one-time runs scheduled for a later time.
--
-- Tables
--   sluice.schedules       one row per cron schedule: expression, time zone,
--                          the task and input of its runs, the missed-fire
--                          policy, and next_fire_at, the earliest fire time
--                          not yet handled (NULL while paused).
--   sluice.schedule_fires  one row per fire time that enqueued a run. Its
--                          primary key (schedule, fire_at) is what makes a
--                          fire time enqueue at most one run, whatever the
--                          coordinators or their clocks do.
--
-- Entry points
--   Applications: create_schedule, pause_schedule, resume_schedule,
--                 delete_schedule, schedule_run, reschedule_run,
--                 delete_scheduled_run; views schedule_status and
--                 scheduled_runs.
--   Coordinator:  fire_due_schedules, called by tick().
--
-- Missed fires
--   A fire time is missed when the fire time after it had also passed
--   before any call of fire_due_schedules handled it, that is when a whole
--   period of the schedule went by without a tick. The schedule's policy
--   decides what a catch-up enqueues:
--     latest (default) the most recent passed fire time, once; the older
--                      missed ones are skipped.
--     all              every passed fire time, oldest first, but at most the
--                      1000 most recent ones; older ones are skipped.
--     skip             none; the schedule resumes at its next future time.
--   A fire time that passed while the following one is still ahead is on
--   time, however late the tick, and fires under every policy. Fire times
--   that pass while a schedule is paused are skipped under every policy.
--
-- Errors
--   SL102  the schedule does not exist.
--   SL103  the run cannot be rescheduled or deleted: it started or finished.

CREATE TABLE sluice.schedules (
    name          text PRIMARY KEY,
    expression    text NOT NULL,
    time_zone     text NOT NULL,
    task          text NOT NULL,
    input         jsonb NOT NULL,
    metadata      jsonb NOT NULL,
    priority      smallint,
    missed        text NOT NULL CHECK (missed IN ('latest', 'all', 'skip')),
    paused        boolean NOT NULL DEFAULT false,
    paused_reason text,
    next_fire_at  timestamptz,
    last_fired_at timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CHECK (paused OR next_fire_at IS NOT NULL)
);

-- fire_due_schedules and next_due_at read the earliest unpaused fire time.
CREATE INDEX schedules_due_idx ON sluice.schedules (next_fire_at) WHERE NOT paused;

COMMENT ON TABLE sluice.schedules IS
    'Cron schedules: each enqueues a run of its task with its input at every fire time of its expression, '
    'read in its time zone.';

CREATE TABLE sluice.schedule_fires (
    schedule text NOT NULL,
    fire_at  timestamptz NOT NULL,
    run_id   bigint,
    PRIMARY KEY (schedule, fire_at)
);

COMMENT ON TABLE sluice.schedule_fires IS
    'Fire times of schedules and the run each enqueued; the primary key allows one run per (schedule, fire time). '
    'Rows older than the run retention are deleted as the schedule fires again.';

-- The maximum number of fire times one catch-up of a schedule with policy
-- 'all' enqueues.
CREATE FUNCTION sluice.max_missed_fires() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 1000 $$;

COMMENT ON FUNCTION sluice.max_missed_fires() IS
    'Maximum number of fire times one catch-up of a schedule with missed => ''all'' enqueues (1000); older missed '
    'ones are skipped.';

-- Raises SL102 for a schedule name that has no row.
CREATE FUNCTION sluice._schedule_not_found(p_name text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'schedule % does not exist', pg_catalog.quote_literal(coalesce(p_name, 'NULL'))
        USING ERRCODE = 'SL102',
              HINT = 'Schedules are listed in the view sluice.schedule_status; create one with sluice.create_schedule().';
END
$$;

-- Raises SL103 for a run that reschedule_run or delete_scheduled_run cannot
-- move, with its state in the message.
CREATE FUNCTION sluice._run_not_waiting(p_action text, p_run_id bigint, p_status sluice.run_status, p_attempt integer)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'cannot % run %: it is % (attempt %)', p_action, p_run_id, p_status, p_attempt
        USING ERRCODE = 'SL103',
              DETAIL = 'Only a run that has not started yet, in state scheduled or queued, can be moved or deleted.',
              HINT = 'Cancel a started run with sluice.cancel().';
END
$$;

-- ---------------------------------------------------------------------------
-- Managing schedules

-- Creates a schedule, or updates the schedule of that name, so that an
-- application can declare its schedules at every start. An update keeps the
-- paused state and keeps next_fire_at unless the expression or the time zone
-- changed, so redeclaring an unchanged schedule neither skips nor repeats a
-- fire time.
CREATE FUNCTION sluice.create_schedule(
    name       text,
    expression text,
    task       text,
    input      jsonb DEFAULT '{}',
    time_zone  text DEFAULT 'UTC',
    metadata   jsonb DEFAULT '{}',
    priority   integer DEFAULT NULL,
    missed     text DEFAULT 'latest'
) RETURNS timestamptz
LANGUAGE plpgsql
AS $$
DECLARE
    v_now timestamptz := sluice.now();
    v_next timestamptz;
    v_schedule sluice.schedules;
BEGIN
    PERFORM sluice._check_name('schedule name', create_schedule.name);
    IF create_schedule.expression IS NULL THEN
        PERFORM sluice._invalid_option('cron expression', NULL, 'Pass a cron expression such as ''0 * * * *''.');
    END IF;
    IF create_schedule.time_zone IS NULL THEN
        PERFORM sluice._invalid_option('time zone', NULL, 'Pass an IANA time zone name such as ''Europe/Berlin''.');
    END IF;
    PERFORM sluice.cron_validate(create_schedule.expression);
    PERFORM sluice._task(create_schedule.task);
    PERFORM sluice._check_payload('input', create_schedule.input, true);
    PERFORM sluice._check_payload('metadata', create_schedule.metadata, true);
    IF create_schedule.priority IS NOT NULL THEN
        PERFORM sluice._check_range('priority', create_schedule.priority, 0, 9);
    END IF;
    IF create_schedule.missed IS NULL OR create_schedule.missed NOT IN ('latest', 'all', 'skip') THEN
        PERFORM sluice._invalid_option('missed', pg_catalog.quote_literal(coalesce(create_schedule.missed, 'NULL')),
                                       'The missed-fire policy is ''latest'', ''all'' or ''skip''.');
    END IF;
    -- Raises SL101 for an unknown time zone.
    v_next := sluice.cron_next(create_schedule.expression, v_now, create_schedule.time_zone);

    INSERT INTO sluice.schedules AS s (name, expression, time_zone, task, input, metadata, priority, missed,
                                       next_fire_at, created_at, updated_at)
    VALUES (create_schedule.name, create_schedule.expression, create_schedule.time_zone, create_schedule.task,
            create_schedule.input, create_schedule.metadata, create_schedule.priority, create_schedule.missed,
            v_next, v_now, v_now)
    ON CONFLICT ON CONSTRAINT schedules_pkey DO UPDATE
    SET expression = excluded.expression, time_zone = excluded.time_zone, task = excluded.task,
        input = excluded.input, metadata = excluded.metadata, priority = excluded.priority,
        missed = excluded.missed, updated_at = v_now,
        next_fire_at = CASE WHEN s.paused THEN NULL
                            WHEN (s.expression, s.time_zone) IS DISTINCT FROM (excluded.expression, excluded.time_zone)
                            THEN excluded.next_fire_at
                            ELSE s.next_fire_at END
    RETURNING * INTO v_schedule;

    IF NOT v_schedule.paused THEN
        PERFORM pg_catalog.pg_notify('sluice_timer', '');
    END IF;
    RETURN v_schedule.next_fire_at;
END
$$;

COMMENT ON FUNCTION sluice.create_schedule(text, text, text, jsonb, text, jsonb, integer, text) IS
    'Creates or updates a cron schedule that enqueues task with input at every fire time of expression in time_zone '
    '(IANA name, default UTC). missed is latest (default), all or skip. An update keeps the paused state and the next '
    'fire time unless expression or time_zone changed. Returns the next fire time, NULL while paused.';

-- Stops a schedule from firing until resume_schedule.
CREATE FUNCTION sluice.pause_schedule(name text) RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_was_paused boolean;
BEGIN
    SELECT s.paused INTO v_was_paused FROM sluice.schedules s WHERE s.name = pause_schedule.name FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM sluice._schedule_not_found(pause_schedule.name);
    END IF;
    IF v_was_paused THEN
        RETURN false;
    END IF;
    UPDATE sluice.schedules s
    SET paused = true, paused_reason = 'paused by sluice.pause_schedule()', next_fire_at = NULL,
        updated_at = sluice.now()
    WHERE s.name = pause_schedule.name;
    RETURN true;
END
$$;

COMMENT ON FUNCTION sluice.pause_schedule(text) IS
    'Pauses a schedule: no fire time enqueues a run until it is resumed. Returns false when it was already paused. '
    'Raises SL102 for an unknown schedule.';

-- Resumes a paused schedule at its first fire time after now. Fire times
-- that passed during the pause are skipped under every missed-fire policy,
-- because a pause is a request not to run.
CREATE FUNCTION sluice.resume_schedule(name text) RETURNS timestamptz
LANGUAGE plpgsql
AS $$
DECLARE
    v_schedule sluice.schedules;
    v_now timestamptz := sluice.now();
BEGIN
    SELECT * INTO v_schedule FROM sluice.schedules s WHERE s.name = resume_schedule.name FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM sluice._schedule_not_found(resume_schedule.name);
    END IF;
    IF NOT v_schedule.paused THEN
        RETURN v_schedule.next_fire_at;
    END IF;
    UPDATE sluice.schedules s
    SET paused = false, paused_reason = NULL, updated_at = v_now,
        next_fire_at = sluice.cron_next(s.expression, v_now, s.time_zone)
    WHERE s.name = resume_schedule.name
    RETURNING * INTO v_schedule;
    PERFORM pg_catalog.pg_notify('sluice_timer', '');
    RETURN v_schedule.next_fire_at;
END
$$;

COMMENT ON FUNCTION sluice.resume_schedule(text) IS
    'Resumes a paused schedule at its first fire time after now, skipping the fire times that passed during the pause. '
    'Returns that time. Raises SL102 for an unknown schedule.';

-- Deletes a schedule with its fire history. Runs it enqueued stay, and
-- their metadata still names the schedule.
CREATE FUNCTION sluice.delete_schedule(name text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM sluice.schedules s WHERE s.name = delete_schedule.name;
    IF NOT FOUND THEN
        PERFORM sluice._schedule_not_found(delete_schedule.name);
    END IF;
    DELETE FROM sluice.schedule_fires f WHERE f.schedule = delete_schedule.name;
END
$$;

COMMENT ON FUNCTION sluice.delete_schedule(text) IS
    'Deletes a schedule and its fire history; runs it enqueued are kept. Raises SL102 for an unknown schedule.';

-- ---------------------------------------------------------------------------
-- Firing

-- Returns the most recent fire times, at most p_max, among those from
-- p_first (itself a fire time) to p_now, oldest first.
CREATE FUNCTION sluice._recent_fire_times(
    p_expression text, p_time_zone text, p_first timestamptz, p_now timestamptz, p_max integer
) RETURNS timestamptz[]
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_times timestamptz[] := ARRAY[p_first];
    v_fire timestamptz := p_first;
    v_span interval := '1 second';
    v_start timestamptz;
    v_count integer;
BEGIN
    -- Walk forward from p_first while that stays within p_max + 1 fire times.
    LOOP
        v_fire := sluice.cron_next(p_expression, v_fire, p_time_zone);
        EXIT WHEN v_fire > p_now;
        v_times := v_times || v_fire;
        IF pg_catalog.cardinality(v_times) > p_max THEN
            EXIT;
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(v_times) <= p_max THEN
        RETURN v_times;
    END IF;

    -- More fire times passed than are kept, possibly millions after a long
    -- outage. Find a window ending at p_now that holds at least p_max of
    -- them by doubling its length, which costs at most p_max steps per
    -- doubling, then collect only that window.
    LOOP
        v_start := greatest(p_now - v_span, p_first);
        v_count := 0;
        v_fire := v_start;
        LOOP
            v_fire := sluice.cron_next(p_expression, v_fire, p_time_zone);
            EXIT WHEN v_fire > p_now OR v_count >= p_max;
            v_count := v_count + 1;
        END LOOP;
        EXIT WHEN v_count >= p_max;
        v_span := v_span * 2;
    END LOOP;

    v_times := '{}';
    v_fire := v_start;
    LOOP
        v_fire := sluice.cron_next(p_expression, v_fire, p_time_zone);
        EXIT WHEN v_fire > p_now;
        v_times := v_times || v_fire;
    END LOOP;
    RETURN v_times[pg_catalog.cardinality(v_times) - p_max + 1:];
END
$$;

-- Returns the fire times a due schedule enqueues now, by its missed-fire
-- policy (see the top of this file), and the next fire time after p_now.
CREATE FUNCTION sluice._due_fire_times(p_schedule sluice.schedules, p_now timestamptz,
                                       OUT fire_times timestamptz[], OUT next_fire_at timestamptz)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_following timestamptz := sluice.cron_next(p_schedule.expression, p_schedule.next_fire_at, p_schedule.time_zone);
BEGIN
    IF v_following > p_now THEN
        -- On time: the only fire time that passed. No fire time lies
        -- between it and v_following, so v_following is also the first
        -- fire time after p_now.
        fire_times := ARRAY[p_schedule.next_fire_at];
        next_fire_at := v_following;
        RETURN;
    END IF;
    fire_times := CASE p_schedule.missed
        WHEN 'skip' THEN '{}'::timestamptz[]
        WHEN 'latest' THEN sluice._recent_fire_times(p_schedule.expression, p_schedule.time_zone,
                                                     p_schedule.next_fire_at, p_now, 1)
        ELSE sluice._recent_fire_times(p_schedule.expression, p_schedule.time_zone,
                                       p_schedule.next_fire_at, p_now, sluice.max_missed_fires())
    END;
    next_fire_at := sluice.cron_next(p_schedule.expression, p_now, p_schedule.time_zone);
END
$$;

-- Enqueues the run of one fire time of a schedule, unless that fire time
-- already has one. Returns the run id, or NULL for a duplicate fire time.
CREATE FUNCTION sluice._fire(p_schedule sluice.schedules, p_fire_at timestamptz) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_run_id bigint;
BEGIN
    -- The fire row comes first: of two transactions that fire the same
    -- time, the second waits here for the first and, when the first
    -- commits, inserts nothing and enqueues nothing.
    INSERT INTO sluice.schedule_fires (schedule, fire_at)
    VALUES (p_schedule.name, p_fire_at)
    ON CONFLICT ON CONSTRAINT schedule_fires_pkey DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    -- run_at is the fire time, so a task's schedule_timeout counts from it.
    v_run_id := sluice.enqueue(
        p_schedule.task, p_schedule.input,
        p_schedule.metadata || pg_catalog.jsonb_build_object('schedule', p_schedule.name, 'fire_at', p_fire_at),
        priority => p_schedule.priority, run_at => p_fire_at);
    UPDATE sluice.schedule_fires f SET run_id = v_run_id
    WHERE f.schedule = p_schedule.name AND f.fire_at = p_fire_at;
    RETURN v_run_id;
END
$$;

-- Fires the schedules whose next fire time has passed. Each schedule is
-- handled in a subtransaction, so one whose task was dropped or whose
-- expression no longer finds a fire time is paused with the error as its
-- reason instead of failing every tick. The work of one call stops after
-- the schedule that brings the number of runs to p_limit.
CREATE FUNCTION sluice.fire_due_schedules(p_limit integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    v_now timestamptz := sluice.now();
    v_retention interval := (SELECT s.retention FROM sluice.settings s);
    v_schedule sluice.schedules;
    v_due record;
    v_fire_at timestamptz;
    v_last_fired timestamptz;
    v_fired integer := 0;
BEGIN
    PERFORM sluice._check_range('p_limit', p_limit, 1, 100000);

    -- SKIP LOCKED: a schedule another session is firing is left to it, and
    -- once that session commits the schedule is no longer due.
    FOR v_schedule IN
        SELECT * FROM sluice.schedules s
        WHERE NOT s.paused AND s.next_fire_at <= v_now
        ORDER BY s.next_fire_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        BEGIN
            v_due := sluice._due_fire_times(v_schedule, v_now);
            v_last_fired := v_schedule.last_fired_at;
            FOREACH v_fire_at IN ARRAY v_due.fire_times LOOP
                IF sluice._fire(v_schedule, v_fire_at) IS NOT NULL THEN
                    v_fired := v_fired + 1;
                END IF;
                v_last_fired := v_fire_at;
            END LOOP;

            UPDATE sluice.schedules s
            SET next_fire_at = v_due.next_fire_at, last_fired_at = v_last_fired
            WHERE s.name = v_schedule.name;
            DELETE FROM sluice.schedule_fires f
            WHERE f.schedule = v_schedule.name AND f.fire_at < v_now - v_retention;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'sluice: paused schedule %: %', pg_catalog.quote_literal(v_schedule.name), SQLERRM
                USING HINT = 'Fix the cause, then call sluice.resume_schedule().';
            UPDATE sluice.schedules s
            SET paused = true, paused_reason = SQLERRM, next_fire_at = NULL
            WHERE s.name = v_schedule.name;
        END;
        EXIT WHEN v_fired >= p_limit;
    END LOOP;
    RETURN v_fired;
END
$$;

COMMENT ON FUNCTION sluice.fire_due_schedules(integer) IS
    'Enqueues the runs of schedules whose fire time has passed, applying each schedule''s missed-fire policy, and '
    'moves them to their next fire time. Returns the number of runs (at least p_limit means more may be due). '
    'A schedule that fails to fire is paused with the error as paused_reason.';

-- ---------------------------------------------------------------------------
-- One-time scheduled runs

-- Enqueues a run for a given time; the same as enqueue with run_at, but
-- run_at is required.
CREATE FUNCTION sluice.schedule_run(
    task            text,
    run_at          timestamptz,
    input           jsonb DEFAULT '{}',
    metadata        jsonb DEFAULT '{}',
    priority        integer DEFAULT NULL,
    max_attempts    integer DEFAULT NULL,
    idempotency_key text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql
AS $$
BEGIN
    IF schedule_run.run_at IS NULL THEN
        PERFORM sluice._invalid_option('run_at', NULL, 'Pass the time the run should start.');
    END IF;
    RETURN sluice.enqueue(schedule_run.task, schedule_run.input, schedule_run.metadata, schedule_run.priority,
                          run_at => schedule_run.run_at, max_attempts => schedule_run.max_attempts,
                          idempotency_key => schedule_run.idempotency_key);
END
$$;

COMMENT ON FUNCTION sluice.schedule_run(text, timestamptz, jsonb, jsonb, integer, integer, text) IS
    'Enqueues one run of task to start at run_at and returns its id; a time in the past starts it at once. '
    'The same as sluice.enqueue(..., run_at => ...).';

-- Moves a run that has not started to a new start time. A scheduled run
-- keeps waiting in sluice.delayed with the new time, even when that time has
-- passed: the coordinator, woken by sluice_timer, promotes it at once through
-- promote_due, which applies the task's flow control. A queued run moved to
-- a future time goes back to sluice.delayed; moved to a past time it stays
-- queued.
CREATE FUNCTION sluice.reschedule_run(run_id bigint, run_at timestamptz) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_now timestamptz := sluice.now();
    v_run record;
    v_queue text;
BEGIN
    IF reschedule_run.run_at IS NULL OR reschedule_run.run_at IN ('infinity', '-infinity') THEN
        PERFORM sluice._invalid_option('run_at', reschedule_run.run_at::text,
                                       'run_at must be a finite time.');
    END IF;

    -- Queue rows first, then the run row: the lock order of every function
    -- that moves a run. A run is movable only while its row waits in
    -- sluice.delayed or sluice.ready and it has no attempt yet; the queue row
    -- lock keeps a claim or the coordinator from moving it meanwhile.
    UPDATE sluice.delayed d SET run_at = reschedule_run.run_at
    WHERE d.run_id = reschedule_run.run_id
      AND EXISTS (SELECT FROM sluice.runs r WHERE r.id = d.run_id AND r.attempt = 0)
    RETURNING d.queue INTO v_queue;
    IF FOUND THEN
        UPDATE sluice.runs r SET run_at = reschedule_run.run_at
        WHERE r.id = reschedule_run.run_id AND r.status = 'scheduled' AND r.attempt = 0;
        PERFORM pg_catalog.pg_notify('sluice_timer', '');
        RETURN;
    END IF;

    PERFORM FROM sluice.ready q WHERE q.run_id = reschedule_run.run_id FOR UPDATE;
    SELECT r.status, r.attempt, r.queue INTO v_run FROM sluice.runs r WHERE r.id = reschedule_run.run_id;
    IF NOT FOUND THEN
        PERFORM sluice._run_not_found(reschedule_run.run_id);
    END IF;
    -- A queued run that is not in sluice.ready is held back by flow control,
    -- and the held table's counters belong to the claim.
    IF v_run.status <> 'queued' OR v_run.attempt > 0
       OR NOT EXISTS (SELECT FROM sluice.ready q WHERE q.run_id = reschedule_run.run_id) THEN
        PERFORM sluice._run_not_waiting('reschedule', reschedule_run.run_id, v_run.status, v_run.attempt);
    END IF;

    IF reschedule_run.run_at <= v_now THEN
        UPDATE sluice.runs r SET run_at = reschedule_run.run_at
        WHERE r.id = reschedule_run.run_id AND r.status = 'queued' AND r.attempt = 0;
        RETURN;
    END IF;
    DELETE FROM sluice.ready q WHERE q.run_id = reschedule_run.run_id;
    INSERT INTO sluice.delayed (run_id, run_at, queue) VALUES (reschedule_run.run_id, reschedule_run.run_at, v_run.queue);
    UPDATE sluice.runs r SET status = 'scheduled', run_at = reschedule_run.run_at
    WHERE r.id = reschedule_run.run_id AND r.status = 'queued' AND r.attempt = 0;
    PERFORM pg_catalog.pg_notify('sluice_timer', '');
END
$$;

COMMENT ON FUNCTION sluice.reschedule_run(bigint, timestamptz) IS
    'Moves a run that has not started (scheduled, or queued with no attempt) to start at run_at; a past time starts '
    'it at once. Raises SL003 for an unknown run and SL103 for a run that started or finished.';

-- Cancels a run that has not started, locking its queue row first so that
-- a claim cannot start it in between.
CREATE FUNCTION sluice.delete_scheduled_run(run_id bigint) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_run record;
    v_waiting boolean;
BEGIN
    v_waiting := EXISTS (SELECT FROM sluice.delayed d WHERE d.run_id = delete_scheduled_run.run_id FOR UPDATE)
              OR EXISTS (SELECT FROM sluice.ready q WHERE q.run_id = delete_scheduled_run.run_id FOR UPDATE);
    SELECT r.status, r.attempt INTO v_run FROM sluice.runs r WHERE r.id = delete_scheduled_run.run_id;
    IF NOT FOUND THEN
        PERFORM sluice._run_not_found(delete_scheduled_run.run_id);
    END IF;
    IF NOT v_waiting OR v_run.attempt > 0 THEN
        PERFORM sluice._run_not_waiting('delete scheduled', delete_scheduled_run.run_id, v_run.status, v_run.attempt);
    END IF;
    PERFORM sluice.cancel(delete_scheduled_run.run_id, 'scheduled run deleted');
END
$$;

COMMENT ON FUNCTION sluice.delete_scheduled_run(bigint) IS
    'Cancels a run that has not started (scheduled, or queued with no attempt). Raises SL003 for an unknown run and '
    'SL103 for a run that started or finished.';

-- ---------------------------------------------------------------------------
-- Views

CREATE VIEW sluice.schedule_status AS
SELECT s.name, s.expression, s.time_zone, s.task, s.missed,
       CASE WHEN s.paused THEN 'paused' ELSE 'active' END AS state,
       s.paused_reason, s.next_fire_at, s.last_fired_at,
       f.run_id AS last_run_id, r.status AS last_run_status,
       s.input, s.metadata, s.priority, s.created_at, s.updated_at
FROM sluice.schedules s
LEFT JOIN LATERAL (SELECT f.run_id FROM sluice.schedule_fires f
                   WHERE f.schedule = s.name ORDER BY f.fire_at DESC LIMIT 1) f ON true
LEFT JOIN sluice.runs r ON r.id = f.run_id;

COMMENT ON VIEW sluice.schedule_status IS
    'Schedules with their state (active or paused, and why), next and last fire time, and the run of the last fire.';

CREATE VIEW sluice.scheduled_runs AS
SELECT r.id AS run_id, r.task, r.queue, d.run_at, r.priority, r.metadata ->> 'schedule' AS schedule,
       r.input, r.metadata, r.created_at
FROM sluice.delayed d
JOIN sluice.runs r ON r.id = d.run_id
WHERE r.status = 'scheduled' AND r.attempt = 0;

COMMENT ON VIEW sluice.scheduled_runs IS
    'Runs waiting for their first start at a later time (retries waiting for their backoff are not listed).';

SELECT pg_catalog.pg_extension_config_dump('sluice.schedules', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.schedule_fires', '');
