-- Cron schedules and one-time scheduled runs: creating, listing, pausing,
-- resuming and deleting schedules, the errors, firing under a moved clock,
-- the missed-fire policies, and moving or deleting scheduled runs.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

SELECT sluice.define_task('report');
SELECT sluice.define_task('cleanup', queue => 'maintenance');

-- Fire times are computed from sluice.now(); a schedule created now fires
-- at its next minute boundary.
SELECT sluice.create_schedule('hourly-report', '0 * * * *', 'report', '{"kind": "hourly"}') =
       sluice.cron_next('0 * * * *', sluice.now()) AS next_is_next_hour;
SELECT sluice.create_schedule('minutely', '* * * * *', 'cleanup', time_zone => 'Europe/Berlin',
                              metadata => '{"team": "ops"}', priority => 5, missed => 'all') IS NOT NULL AS created;
SELECT name, expression, time_zone, task, missed, state, paused_reason, last_fired_at, last_run_id, input, metadata,
       priority
FROM sluice.schedule_status ORDER BY name;

-- Redeclaring an unchanged schedule keeps its next fire time; changing the
-- expression recomputes it.
SELECT next_fire_at AS before_redeclare FROM sluice.schedules WHERE name = 'hourly-report' \gset
SELECT sluice.create_schedule('hourly-report', '0 * * * *', 'report', '{"kind": "hourly", "v": 2}') = :'before_redeclare'
       AS same_next_fire_at;
SELECT input FROM sluice.schedules WHERE name = 'hourly-report';
SELECT sluice.create_schedule('hourly-report', '30 * * * *', 'report', '{"kind": "hourly"}') =
       sluice.cron_next('30 * * * *', sluice.now()) AS recomputed;
SELECT sluice.create_schedule('hourly-report', '0 * * * *', 'report', '{"kind": "hourly"}') IS NOT NULL AS restored;

-- Creating, resuming and rescheduling send sluice_timer to wake the
-- coordinator; schedule_fire_race.spec shows the notifications.
SELECT sluice.create_schedule('nightly', '0 3 * * *', 'report', time_zone => 'America/New_York') IS NOT NULL AS created;

-- Errors: each names the value and has its own SQLSTATE.
\set VERBOSITY verbose
SELECT sluice.create_schedule('bad cron', '0 * * * *', 'report');
SELECT sluice.create_schedule('bad-cron', '61 * * * *', 'report');
SELECT sluice.create_schedule('bad-cron', '0 0 31 2 *', 'report');
SELECT sluice.create_schedule('bad-zone', '0 * * * *', 'report', time_zone => 'Mars/Base');
SELECT sluice.create_schedule('bad-task', '0 * * * *', 'no-such-task');
SELECT sluice.create_schedule('bad-input', '0 * * * *', 'report', '[1, 2]');
SELECT sluice.create_schedule('bad-input', '0 * * * *', 'report', NULL);
SELECT sluice.create_schedule('bad-policy', '0 * * * *', 'report', missed => 'every');
SELECT sluice.create_schedule('bad-priority', '0 * * * *', 'report', priority => 10);
SELECT sluice.create_schedule('bad-cron', NULL, 'report');
SELECT sluice.pause_schedule('no-such-schedule');
SELECT sluice.resume_schedule('no-such-schedule');
SELECT sluice.delete_schedule('no-such-schedule');
SELECT sluice.fire_due_schedules(0);
\set VERBOSITY default
SELECT count(*) AS schedules_after_errors FROM sluice.schedules;

-- Pause and resume: a paused schedule has no next fire time and does not
-- fire; resuming starts at the first fire time after now.
SELECT sluice.pause_schedule('nightly') AS paused;
SELECT sluice.pause_schedule('nightly') AS paused_again;
SELECT state, paused_reason, next_fire_at FROM sluice.schedule_status WHERE name = 'nightly';
SELECT sluice.resume_schedule('nightly') = sluice.cron_next('0 3 * * *', sluice.now(), 'America/New_York') AS resumed_at_next;
SELECT sluice.resume_schedule('nightly') = next_fire_at AS resume_twice_keeps_time
FROM sluice.schedules WHERE name = 'nightly';
SELECT state FROM sluice.schedule_status WHERE name = 'nightly';
SELECT sluice.delete_schedule('nightly');
SELECT count(*) AS nightly_left FROM sluice.schedules WHERE name = 'nightly';

-- next_due_at includes the earliest fire time of an unpaused schedule.
SELECT sluice.next_due_at() = (SELECT min(next_fire_at) FROM sluice.schedules) AS next_due_is_fire_time;
SELECT sluice.pause_schedule('minutely') AND sluice.pause_schedule('hourly-report') AS paused_both;
SELECT sluice.next_due_at() IS NULL AS nothing_due_when_paused;
SELECT sluice.resume_schedule('minutely') IS NOT NULL AS resumed;

-- Firing: nothing is due yet.
SELECT sluice.fire_due_schedules() AS fired_early;

-- Move the clock one second past the next fire time: the schedule fires
-- once, and a second call fires nothing more. The offset is computed from
-- the fire time, so the test does not depend on the second it starts at.
SELECT next_fire_at AS first_fire FROM sluice.schedules WHERE name = 'minutely' \gset
SELECT set_config('sluice.clock_offset', (:'first_fire'::timestamptz - now() + interval '1 second')::text, false)
       IS NOT NULL AS clock_moved;
SELECT sluice.fire_due_schedules() AS fired;
SELECT sluice.fire_due_schedules() AS fired_again;
SELECT count(*) AS fires, min(fire_at) = :'first_fire' AS at_first_fire FROM sluice.schedule_fires;
SELECT r.task, r.queue, r.status, r.priority, r.run_at = :'first_fire' AS run_at_is_fire_time,
       r.metadata ->> 'schedule' AS schedule, r.metadata ->> 'team' AS team,
       (r.metadata ->> 'fire_at')::timestamptz = :'first_fire' AS metadata_names_fire_time
FROM sluice.runs r JOIN sluice.schedule_fires f ON f.run_id = r.id;
SELECT next_fire_at = :'first_fire'::timestamptz + interval '1 minute' AS advanced_one_minute,
       last_fired_at = :'first_fire' AS last_fired
FROM sluice.schedules WHERE name = 'minutely';
SELECT last_run_id = (SELECT run_id FROM sluice.schedule_fires) AS status_names_run, last_run_status
FROM sluice.schedule_status WHERE name = 'minutely';

-- The fire row decides even when a schedule's next_fire_at is moved back
-- to a fire time that already has a run.
UPDATE sluice.schedules SET next_fire_at = :'first_fire' WHERE name = 'minutely';
SELECT sluice.fire_due_schedules() AS fired_after_rewind;
SELECT count(*) AS fires_after_rewind FROM sluice.schedule_fires;
SELECT count(*) AS runs_after_rewind FROM sluice.runs;

-- tick() fires schedules too and reports the count in its last column.
SELECT set_config('sluice.clock_offset', (next_fire_at - now() + interval '1 second')::text, false)
       IS NOT NULL AS clock_moved
FROM sluice.schedules WHERE name = 'minutely';
SELECT promoted, expired, timed_out, fired, next_due_at AS tick_next_due FROM sluice.tick() \gset
SELECT :promoted AS promoted, :expired AS expired, :timed_out AS timed_out, :fired AS fired,
       :'tick_next_due' = next_fire_at AS next_due_is_fire_time
FROM sluice.schedules WHERE name = 'minutely';

-- Missed fires: about five minutes pass without a tick. Three schedules
-- with the same expression and each policy see the same five fire times:
-- the clock stops 30 seconds after the fifth.
RESET sluice.clock_offset;
SELECT sluice.delete_schedule('minutely');
SELECT sluice.delete_schedule('hourly-report');
TRUNCATE sluice.runs, sluice.ready, sluice.delayed;
SELECT sluice.create_schedule('catch-up-' || p, '* * * * *', 'report', jsonb_build_object('policy', p), missed => p)
       IS NOT NULL AS created
FROM unnest(ARRAY['latest', 'all', 'skip']) AS p;
SELECT next_fire_at AS gap_first_fire FROM sluice.schedules WHERE name = 'catch-up-all' \gset
SELECT set_config('sluice.clock_offset', (:'gap_first_fire'::timestamptz - now() + interval '4 minutes 30 seconds')::text,
                  false) IS NOT NULL AS clock_moved;
SELECT sluice.fire_due_schedules() AS fired;
SELECT s.name, count(f.fire_at) AS fires,
       coalesce(array_agg(extract(epoch FROM f.fire_at - :'gap_first_fire')::integer ORDER BY f.fire_at)
                FILTER (WHERE f.fire_at IS NOT NULL), '{}') AS seconds_after_first_missed,
       s.next_fire_at = :'gap_first_fire'::timestamptz + interval '5 minutes' AS next_is_future,
       s.last_fired_at IS NOT DISTINCT FROM (SELECT max(fire_at) FROM sluice.schedule_fires x WHERE x.schedule = s.name)
           AS last_fired
FROM sluice.schedules s LEFT JOIN sluice.schedule_fires f ON f.schedule = s.name
GROUP BY s.name, s.next_fire_at, s.last_fired_at ORDER BY s.name;
SELECT input ->> 'policy' AS policy, count(*) AS runs FROM sluice.runs GROUP BY 1 ORDER BY 1;
SELECT sluice.fire_due_schedules() AS fired_again;

-- After the catch-up each policy fires the next minute on time.
SELECT set_config('sluice.clock_offset', (:'gap_first_fire'::timestamptz - now() + interval '5 minutes 1 second')::text,
                  false) IS NOT NULL AS clock_moved;
SELECT sluice.fire_due_schedules() AS fired_on_time;
RESET sluice.clock_offset;

-- 'all' keeps at most max_missed_fires() of the most recent fire times.
SELECT sluice.delete_schedule('catch-up-' || p) FROM unnest(ARRAY['latest', 'all', 'skip']) AS p;
SELECT sluice.create_schedule('every-second', '* * * * * *', 'report', missed => 'all') IS NOT NULL AS created;
SELECT next_fire_at AS burst_first FROM sluice.schedules \gset
SET sluice.clock_offset = '1 hour';
SELECT sluice.fire_due_schedules(100000) AS fired;
SELECT count(*) = sluice.max_missed_fires() AS capped,
       max(fire_at) = (SELECT next_fire_at - interval '1 second' FROM sluice.schedules) AS newest_before_next,
       max(fire_at) - min(fire_at) = (sluice.max_missed_fires() - 1) * interval '1 second' AS consecutive
FROM sluice.schedule_fires;
SELECT sluice.delete_schedule('every-second');
SELECT count(*) AS fires_deleted_with_schedule FROM sluice.schedule_fires;
RESET sluice.clock_offset;

-- A schedule whose task disappeared is paused with the reason, and the
-- other schedules keep firing.
TRUNCATE sluice.runs, sluice.ready, sluice.delayed;
SELECT sluice.define_task('doomed');
SELECT sluice.create_schedule('orphan', '* * * * *', 'doomed') IS NOT NULL AS created;
SELECT sluice.create_schedule('healthy', '* * * * *', 'report') IS NOT NULL AS created;
DELETE FROM sluice.tasks WHERE name = 'doomed';
SET sluice.clock_offset = '61 seconds';
SELECT sluice.fire_due_schedules() AS fired;
SELECT name, state, paused_reason, next_fire_at IS NULL AS no_next_fire FROM sluice.schedule_status ORDER BY name;
RESET sluice.clock_offset;
SELECT sluice.delete_schedule('orphan');
SELECT sluice.delete_schedule('healthy');

-- Fire rows older than the run retention are deleted when the schedule
-- fires again.
SELECT sluice.create_schedule('kept', '* * * * *', 'report') IS NOT NULL AS created;
INSERT INTO sluice.schedule_fires (schedule, fire_at) VALUES ('kept', sluice.now() - interval '8 days');
SET sluice.clock_offset = '61 seconds';
SELECT sluice.fire_due_schedules() AS fired;
SELECT count(*) AS fires, bool_and(fire_at > sluice.now() - interval '1 day') AS old_row_deleted FROM sluice.schedule_fires;
RESET sluice.clock_offset;
SELECT sluice.delete_schedule('kept');

-- One-time scheduled runs. A run scheduled in the past is queued at once.
TRUNCATE sluice.runs, sluice.ready, sluice.delayed;
SELECT sluice.schedule_run('report', sluice.now() - interval '1 minute', '{"n": 1}') AS past_run \gset
SELECT status, (SELECT count(*) FROM sluice.ready WHERE run_id = :past_run) AS in_ready FROM sluice.runs WHERE id = :past_run;
SELECT sluice.schedule_run('report', NULL);

SELECT sluice.schedule_run('report', sluice.now() + interval '10 minutes', '{"n": 2}') AS later_run \gset
SELECT run_id = :later_run AS listed, task, queue, run_at - sluice.now() BETWEEN interval '9 minutes' AND interval '10 minutes'
       AS in_ten_minutes, schedule
FROM sluice.scheduled_runs;

-- Rescheduled earlier, the run is due at the new time; the next tick
-- promotes it.
SELECT sluice.reschedule_run(:later_run, sluice.now() + interval '1 minute');
SELECT status, run_at = (SELECT run_at FROM sluice.delayed WHERE run_id = :later_run) AS delayed_moved,
       sluice.next_due_at() = run_at AS next_due_is_new_time
FROM sluice.runs WHERE id = :later_run;
SET sluice.clock_offset = '61 seconds';
SELECT promoted FROM sluice.tick();
SELECT status FROM sluice.runs WHERE id = :later_run;
RESET sluice.clock_offset;

-- Rescheduled later, a queued run that has not started goes back to
-- waiting; rescheduled to the past, it is due at once.
SELECT sluice.reschedule_run(:past_run, sluice.now() + interval '1 hour');
SELECT status, (SELECT count(*) FROM sluice.ready WHERE run_id = :past_run) AS in_ready,
       (SELECT count(*) FROM sluice.delayed WHERE run_id = :past_run) AS in_delayed
FROM sluice.runs WHERE id = :past_run;
SELECT promoted FROM sluice.tick();
SELECT sluice.reschedule_run(:past_run, sluice.now() - interval '1 second');
SELECT status FROM sluice.runs WHERE id = :past_run;
SELECT promoted FROM sluice.tick();
SELECT status FROM sluice.runs WHERE id = :past_run;
SELECT sluice.reschedule_run(:past_run, sluice.now() - interval '1 second');
SELECT status FROM sluice.runs WHERE id = :past_run;

-- Started, finished and unknown runs cannot be moved or deleted.
SELECT sluice.register_worker('w1', ARRAY['report']) AS w1 \gset
SELECT count(*) AS claimed FROM sluice.claim(:'w1', 10);
\set VERBOSITY verbose
SELECT sluice.reschedule_run(:past_run, sluice.now() + interval '1 hour');
SELECT sluice.delete_scheduled_run(:past_run);
SELECT sluice.reschedule_run(-1, sluice.now());
SELECT sluice.delete_scheduled_run(-1);
SELECT sluice.reschedule_run(:later_run, 'infinity');
\set VERBOSITY default

-- Deleting a scheduled run cancels it and takes it out of the view.
SELECT sluice.schedule_run('report', sluice.now() + interval '1 day') AS doomed_run \gset
SELECT sluice.delete_scheduled_run(:doomed_run);
SELECT status, error ->> 'message' AS message FROM sluice.runs WHERE id = :doomed_run;
SELECT count(*) AS listed FROM sluice.scheduled_runs WHERE run_id = :doomed_run;
SELECT sluice.delete_scheduled_run(:doomed_run);
