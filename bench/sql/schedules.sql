-- Schedule benchmark: how long firing 100,000 schedules that are due in the
-- same minute takes, and what one coordinator tick costs while 100,000
-- schedules wait for a future time.
--
-- Usage, against a database where the sluice extension may be dropped:
--   psql -X -v ON_ERROR_STOP=1 -f bench/sql/schedules.sql
-- Set the psql variable count to use another number of schedules:
--   psql -X -v count=10000 -f bench/sql/schedules.sql
\set QUIET on
\if :{?count}
\else
\set count 100000
\endif
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sluice;
CREATE EXTENSION sluice;
DO $$ BEGIN PERFORM sluice.define_task('bench-scheduled'); END $$;
\pset footer off
\pset format aligned

-- 1. :count schedules with the same expression are due at the same minute.
--    The coordinator calls tick() until no count reaches the limit, and
--    this loop calls fire_due_schedules(1000) until it returns less than 1000.
SELECT clock_timestamp() AS create_start \gset
SELECT count(sluice.create_schedule('due-' || i, '* * * * *', 'bench-scheduled', jsonb_build_object('n', i)))
       AS created
FROM generate_series(1, :count) AS i \gset
SELECT extract(epoch FROM clock_timestamp() - :'create_start')::numeric(10, 2) AS create_seconds \gset
SELECT set_config('sluice.clock_offset', (min(next_fire_at) - now() + interval '1 second')::text, false)
       IS NOT NULL AS clock_moved
FROM sluice.schedules \gset

CREATE TEMP TABLE fire_calls (call integer, fired integer, seconds double precision);
DO $$
DECLARE
    v_call integer := 0;
    v_fired integer;
    v_start timestamptz;
BEGIN
    LOOP
        v_call := v_call + 1;
        v_start := clock_timestamp();
        v_fired := sluice.fire_due_schedules(1000);
        INSERT INTO fire_calls VALUES (v_call, v_fired, extract(epoch FROM clock_timestamp() - v_start));
        EXIT WHEN v_fired < 1000;
    END LOOP;
END
$$;

SELECT :count AS schedules, :'create_seconds' AS create_seconds,
       sum(fired) AS runs_fired, count(*) AS calls,
       round(sum(seconds)::numeric, 2) AS fire_seconds,
       round((sum(fired) / nullif(sum(seconds), 0))::numeric) AS fires_per_second,
       round((1000 * max(seconds))::numeric, 1) AS slowest_call_ms
FROM fire_calls;
SELECT count(*) = :count AS one_run_per_schedule FROM sluice.runs;

-- 2. Idle cost: :count schedules wait for a future fire time. One tick with
--    nothing due, and next_due_at, which the coordinator sleeps until.
RESET sluice.clock_offset;
TRUNCATE sluice.schedules, sluice.schedule_fires, sluice.runs, sluice.ready, sluice.delayed;
SELECT count(sluice.create_schedule('future-' || i, '0 0 1 1 *', 'bench-scheduled')) AS created
FROM generate_series(1, :count) AS i \gset
ANALYZE sluice.schedules;
CREATE TEMP TABLE idle_ticks (seconds double precision, fired integer);
DO $$
DECLARE
    v_start timestamptz;
    v_fired integer;
BEGIN
    FOR i IN 1..100 LOOP
        v_start := clock_timestamp();
        SELECT t.fired INTO v_fired FROM sluice.tick() t;
        INSERT INTO idle_ticks VALUES (extract(epoch FROM clock_timestamp() - v_start), v_fired);
    END LOOP;
END
$$;
SELECT :count AS future_schedules, count(*) AS ticks, sum(fired) AS fired,
       round((1000 * avg(seconds))::numeric, 3) AS avg_tick_ms,
       round((1000 * max(seconds))::numeric, 3) AS max_tick_ms,
       (SELECT sluice.next_due_at() = min(next_fire_at) FROM sluice.schedules) AS sleeps_until_next_fire
FROM idle_ticks;
