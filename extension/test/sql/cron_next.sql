-- cron_next: single fire times and sequences of consecutive fires through
-- daylight-saving changes. Expected times are written in local time with
-- their UTC offset. "ok" compares them with the actual result as instants,
-- and wrong_actual shows the actual result only when they differ.
SET timezone = 'UTC';

-- Single fire times.
SELECT expression, time_zone, after, expected,
       actual = expected::timestamptz AS ok,
       CASE WHEN actual IS DISTINCT FROM expected::timestamptz THEN actual END AS wrong_actual
FROM (
    SELECT t.*, sluice.cron_next(expression, after::timestamptz, time_zone) AS actual
    FROM (VALUES
        -- Strictly after: a fire time equal to "after" is skipped, and a
        -- fraction of a second before it is not.
        ('0 0 * * *', 'UTC', '2026-01-01 00:00:00+00', '2026-01-02 00:00:00+00'),
        ('0 0 * * *', 'UTC', '2025-12-31 23:59:59.999+00', '2026-01-01 00:00:00+00'),
        ('* * * * *', 'UTC', '2026-01-01 00:00:30.5+00', '2026-01-01 00:01:00+00'),
        -- Steps and lists.
        ('5/10 * * * *', 'UTC', '2026-01-01 00:00+00', '2026-01-01 00:05+00'),
        ('5/10 * * * *', 'UTC', '2026-01-01 00:55+00', '2026-01-01 01:05+00'),
        ('10-50/20 * * * *', 'UTC', '2026-01-01 00:00+00', '2026-01-01 00:10+00'),
        ('10-50/20 * * * *', 'UTC', '2026-01-01 00:50+00', '2026-01-01 01:10+00'),
        ('*/25 * * * *', 'UTC', '2026-01-01 00:50+00', '2026-01-01 01:00+00'),
        ('0 8,12,18 * * *', 'UTC', '2026-01-01 12:00+00', '2026-01-01 18:00+00'),
        ('59 23 31 12 *', 'UTC', '2026-06-01 00:00+00', '2026-12-31 23:59+00'),
        -- Month ends: months without the day are skipped.
        ('0 0 31 * *', 'UTC', '2026-01-31 00:00+00', '2026-03-31 00:00+00'),
        ('0 0 31 * *', 'UTC', '2026-03-31 00:00+00', '2026-05-31 00:00+00'),
        ('0 0 31 * *', 'UTC', '2026-07-31 00:00+00', '2026-08-31 00:00+00'),
        ('0 0 30 * *', 'UTC', '2026-01-30 00:00+00', '2026-03-30 00:00+00'),
        ('0 0 29 * *', 'UTC', '2027-01-29 00:00+00', '2027-03-29 00:00+00'),
        ('0 0 29 * *', 'UTC', '2028-01-29 00:00+00', '2028-02-29 00:00+00'),
        -- Leap days, including 2100, which is not a leap year.
        ('0 0 29 2 *', 'UTC', '2025-01-01 00:00+00', '2028-02-29 00:00+00'),
        ('0 0 29 2 *', 'UTC', '2026-03-01 00:00+00', '2028-02-29 00:00+00'),
        ('0 0 29 2 *', 'UTC', '2028-02-28 23:59+00', '2028-02-29 00:00+00'),
        ('0 0 29 2 *', 'UTC', '2028-02-29 00:00+00', '2032-02-29 00:00+00'),
        ('0 0 29 2 *', 'UTC', '2096-03-01 00:00+00', '2104-02-29 00:00+00'),
        ('0 0 29 2 *', 'Europe/Berlin', '2025-01-01 00:00+00', '2028-02-29 00:00+01'),
        -- Six fields: seconds first.
        ('*/10 * * * * *', 'UTC', '2026-01-01 00:00:05+00', '2026-01-01 00:00:10+00'),
        ('*/10 * * * * *', 'UTC', '2026-01-01 00:00:50+00', '2026-01-01 00:01:00+00'),
        ('30 15 10 * * *', 'UTC', '2026-01-01 10:15:30+00', '2026-01-02 10:15:30+00'),
        ('0 0 0 1 1 *', 'UTC', '2026-06-01 00:00+00', '2027-01-01 00:00+00'),
        ('59 59 23 31 12 *', 'UTC', '2026-01-01 00:00+00', '2026-12-31 23:59:59+00'),
        -- Weekday and month names. 2026-01-01 is a Thursday.
        ('0 9 * * MON-FRI', 'UTC', '2026-01-02 10:00+00', '2026-01-05 09:00+00'),
        ('0 9 * * sat,sun', 'UTC', '2026-01-05 00:00+00', '2026-01-10 09:00+00'),
        ('0 0 * * 7', 'UTC', '2026-01-01 00:00+00', '2026-01-04 00:00+00'),
        ('0 0 * * 0', 'UTC', '2026-01-01 00:00+00', '2026-01-04 00:00+00'),
        ('0 0 1 jun *', 'UTC', '2026-01-01 00:00+00', '2026-06-01 00:00+00'),
        ('0 0 1 JAN,JUL *', 'UTC', '2026-02-01 00:00+00', '2026-07-01 00:00+00'),
        -- Day of month OR day of week when both are restricted.
        ('0 0 13 * FRI', 'UTC', '2026-01-01 00:00+00', '2026-01-02 00:00+00'),
        ('0 0 13 * FRI', 'UTC', '2026-01-09 00:00+00', '2026-01-13 00:00+00'),
        ('0 0 1 * MON', 'UTC', '2026-01-31 00:00+00', '2026-02-01 00:00+00'),
        ('0 0 1 * MON', 'UTC', '2026-02-01 00:00+00', '2026-02-02 00:00+00'),
        -- The OR rule applies within the selected months only: the first
        -- Monday of February, although February never has a 31st.
        ('0 0 31 2 MON', 'UTC', '2026-01-01 00:00+00', '2026-02-02 00:00+00'),
        -- "*/10" is not a bare "*", so it restricts the day of month and
        -- the OR rule applies: Monday 2026-01-05 comes before the 11th.
        ('0 0 */10 * MON', 'UTC', '2026-01-01 00:00+00', '2026-01-05 00:00+00'),
        -- Only one field restricted: that field decides.
        ('0 0 * 3 MON', 'UTC', '2026-01-01 00:00+00', '2026-03-02 00:00+00'),
        ('0 0 1 * *', 'UTC', '2026-01-15 00:00+00', '2026-02-01 00:00+00'),
        -- Macros.
        ('@yearly', 'UTC', '2026-03-01 00:00+00', '2027-01-01 00:00+00'),
        ('@annually', 'UTC', '2026-03-01 00:00+00', '2027-01-01 00:00+00'),
        ('@monthly', 'UTC', '2026-01-31 12:00+00', '2026-02-01 00:00+00'),
        ('@weekly', 'UTC', '2026-01-01 00:00+00', '2026-01-04 00:00+00'),
        ('@daily', 'UTC', '2026-01-01 12:00+00', '2026-01-02 00:00+00'),
        ('@midnight', 'UTC', '2026-01-01 12:00+00', '2026-01-02 00:00+00'),
        ('@hourly', 'UTC', '2026-01-01 12:30+00', '2026-01-01 13:00+00'),
        ('@DAILY', 'Europe/Berlin', '2026-01-01 12:00+00', '2026-01-02 00:00+01'),
        -- Time zones: fields are read as local time in the given zone.
        ('0 9 * * *', 'Europe/Berlin', '2026-01-01 00:00+00', '2026-01-01 09:00+01'),
        ('0 9 * * *', 'Europe/Berlin', '2026-07-01 00:00+00', '2026-07-01 09:00+02'),
        ('0 9 * * *', 'europe/berlin', '2026-07-01 00:00+00', '2026-07-01 09:00+02'),
        ('0 0 * * *', 'Asia/Kolkata', '2026-01-01 00:00+00', '2026-01-02 00:00+05:30'),
        ('0 9 * * *', 'America/New_York', '2026-01-01 00:00+00', '2026-01-01 09:00-05'),
        ('0 0 1 1 *', 'Australia/Sydney', '2026-06-01 00:00+00', '2027-01-01 00:00+11'),
        -- Fixed time in an overlap: after the first occurrence, the second
        -- one does not fire again.
        ('30 2 * * *', 'Europe/Berlin', '2026-10-25 02:10+01', '2026-10-26 02:30+01'),
        ('30 2 * * *', 'Europe/Berlin', '2026-10-25 02:40+02', '2026-10-26 02:30+01'),
        ('30 1 * * *', 'America/New_York', '2026-11-01 01:40-04', '2026-11-02 01:30-05'),
        -- Fixed time in a gap: several skipped times fire once, at the end of
        -- the gap.
        ('0,30 2 * * *', 'Europe/Berlin', '2026-03-29 01:59+01', '2026-03-29 03:00+02'),
        ('0,30 2 * * *', 'Europe/Berlin', '2026-03-29 03:00+02', '2026-03-30 02:00+02'),
        ('15 2,3 * * *', 'Europe/Berlin', '2026-03-29 03:00+02', '2026-03-29 03:15+02')
    ) AS t(expression, time_zone, after, expected)
) AS checked;

-- Consecutive fires through daylight-saving changes. Step 0 is the start;
-- each later step is cron_next of the step before it.
WITH sequence(id, expression, time_zone, step, expected) AS (VALUES
    -- Europe/Berlin, spring forward 2026-03-29: 02:00 CET becomes 03:00 CEST.
    (1, '*/15 * * * *', 'Europe/Berlin', 0, '2026-03-29 01:30+01'),
    (1, '*/15 * * * *', 'Europe/Berlin', 1, '2026-03-29 01:45+01'),
    (1, '*/15 * * * *', 'Europe/Berlin', 2, '2026-03-29 03:00+02'),
    (1, '*/15 * * * *', 'Europe/Berlin', 3, '2026-03-29 03:15+02'),
    (2, '0 * * * *', 'Europe/Berlin', 0, '2026-03-29 00:30+01'),
    (2, '0 * * * *', 'Europe/Berlin', 1, '2026-03-29 01:00+01'),
    (2, '0 * * * *', 'Europe/Berlin', 2, '2026-03-29 03:00+02'),
    (2, '0 * * * *', 'Europe/Berlin', 3, '2026-03-29 04:00+02'),
    (3, '30 2 * * *', 'Europe/Berlin', 0, '2026-03-27 12:00+01'),
    (3, '30 2 * * *', 'Europe/Berlin', 1, '2026-03-28 02:30+01'),
    (3, '30 2 * * *', 'Europe/Berlin', 2, '2026-03-29 03:00+02'),
    (3, '30 2 * * *', 'Europe/Berlin', 3, '2026-03-30 02:30+02'),
    (4, '0 2 * * *', 'Europe/Berlin', 0, '2026-03-28 12:00+01'),
    (4, '0 2 * * *', 'Europe/Berlin', 1, '2026-03-29 03:00+02'),
    (4, '0 2 * * *', 'Europe/Berlin', 2, '2026-03-30 02:00+02'),
    (5, '0 */2 * * *', 'Europe/Berlin', 0, '2026-03-28 23:30+01'),
    (5, '0 */2 * * *', 'Europe/Berlin', 1, '2026-03-29 00:00+01'),
    (5, '0 */2 * * *', 'Europe/Berlin', 2, '2026-03-29 04:00+02'),
    -- Europe/Berlin, fall back 2026-10-25: 03:00 CEST becomes 02:00 CET.
    (6, '*/15 * * * *', 'Europe/Berlin', 0, '2026-10-25 02:30+02'),
    (6, '*/15 * * * *', 'Europe/Berlin', 1, '2026-10-25 02:45+02'),
    (6, '*/15 * * * *', 'Europe/Berlin', 2, '2026-10-25 02:00+01'),
    (6, '*/15 * * * *', 'Europe/Berlin', 3, '2026-10-25 02:15+01'),
    (6, '*/15 * * * *', 'Europe/Berlin', 4, '2026-10-25 02:30+01'),
    (6, '*/15 * * * *', 'Europe/Berlin', 5, '2026-10-25 02:45+01'),
    (6, '*/15 * * * *', 'Europe/Berlin', 6, '2026-10-25 03:00+01'),
    (7, '0 * * * *', 'Europe/Berlin', 0, '2026-10-25 00:30+02'),
    (7, '0 * * * *', 'Europe/Berlin', 1, '2026-10-25 01:00+02'),
    (7, '0 * * * *', 'Europe/Berlin', 2, '2026-10-25 02:00+02'),
    (7, '0 * * * *', 'Europe/Berlin', 3, '2026-10-25 02:00+01'),
    (7, '0 * * * *', 'Europe/Berlin', 4, '2026-10-25 03:00+01'),
    (8, '30 2 * * *', 'Europe/Berlin', 0, '2026-10-24 12:00+02'),
    (8, '30 2 * * *', 'Europe/Berlin', 1, '2026-10-25 02:30+02'),
    (8, '30 2 * * *', 'Europe/Berlin', 2, '2026-10-26 02:30+01'),
    (9, '0 2 * * *', 'Europe/Berlin', 0, '2026-10-24 12:00+02'),
    (9, '0 2 * * *', 'Europe/Berlin', 1, '2026-10-25 02:00+02'),
    (9, '0 2 * * *', 'Europe/Berlin', 2, '2026-10-26 02:00+01'),
    -- A range in the hour field follows real time, like "*".
    (10, '*/30 1-3 * * *', 'Europe/Berlin', 0, '2026-10-25 01:30+02'),
    (10, '*/30 1-3 * * *', 'Europe/Berlin', 1, '2026-10-25 02:00+02'),
    (10, '*/30 1-3 * * *', 'Europe/Berlin', 2, '2026-10-25 02:30+02'),
    (10, '*/30 1-3 * * *', 'Europe/Berlin', 3, '2026-10-25 02:00+01'),
    (10, '*/30 1-3 * * *', 'Europe/Berlin', 4, '2026-10-25 02:30+01'),
    (10, '*/30 1-3 * * *', 'Europe/Berlin', 5, '2026-10-25 03:00+01'),
    -- America/New_York, spring forward 2026-03-08: 02:00 EST becomes 03:00 EDT.
    (11, '*/15 * * * *', 'America/New_York', 0, '2026-03-08 01:30-05'),
    (11, '*/15 * * * *', 'America/New_York', 1, '2026-03-08 01:45-05'),
    (11, '*/15 * * * *', 'America/New_York', 2, '2026-03-08 03:00-04'),
    (11, '*/15 * * * *', 'America/New_York', 3, '2026-03-08 03:15-04'),
    (12, '0 * * * *', 'America/New_York', 0, '2026-03-08 00:30-05'),
    (12, '0 * * * *', 'America/New_York', 1, '2026-03-08 01:00-05'),
    (12, '0 * * * *', 'America/New_York', 2, '2026-03-08 03:00-04'),
    (12, '0 * * * *', 'America/New_York', 3, '2026-03-08 04:00-04'),
    (13, '30 2 * * *', 'America/New_York', 0, '2026-03-07 12:00-05'),
    (13, '30 2 * * *', 'America/New_York', 1, '2026-03-08 03:00-04'),
    (13, '30 2 * * *', 'America/New_York', 2, '2026-03-09 02:30-04'),
    (14, '0 2 * * *', 'America/New_York', 0, '2026-03-07 12:00-05'),
    (14, '0 2 * * *', 'America/New_York', 1, '2026-03-08 03:00-04'),
    (14, '0 2 * * *', 'America/New_York', 2, '2026-03-09 02:00-04'),
    -- America/New_York, fall back 2026-11-01: 02:00 EDT becomes 01:00 EST.
    (15, '*/15 * * * *', 'America/New_York', 0, '2026-11-01 00:30-04'),
    (15, '*/15 * * * *', 'America/New_York', 1, '2026-11-01 00:45-04'),
    (15, '*/15 * * * *', 'America/New_York', 2, '2026-11-01 01:00-04'),
    (15, '*/15 * * * *', 'America/New_York', 3, '2026-11-01 01:15-04'),
    (15, '*/15 * * * *', 'America/New_York', 4, '2026-11-01 01:30-04'),
    (15, '*/15 * * * *', 'America/New_York', 5, '2026-11-01 01:45-04'),
    (15, '*/15 * * * *', 'America/New_York', 6, '2026-11-01 01:00-05'),
    (15, '*/15 * * * *', 'America/New_York', 7, '2026-11-01 01:15-05'),
    (15, '*/15 * * * *', 'America/New_York', 8, '2026-11-01 01:30-05'),
    (15, '*/15 * * * *', 'America/New_York', 9, '2026-11-01 01:45-05'),
    (15, '*/15 * * * *', 'America/New_York', 10, '2026-11-01 02:00-05'),
    (16, '0 * * * *', 'America/New_York', 0, '2026-11-01 00:30-04'),
    (16, '0 * * * *', 'America/New_York', 1, '2026-11-01 01:00-04'),
    (16, '0 * * * *', 'America/New_York', 2, '2026-11-01 01:00-05'),
    (16, '0 * * * *', 'America/New_York', 3, '2026-11-01 02:00-05'),
    (17, '30 1 * * *', 'America/New_York', 0, '2026-10-31 12:00-04'),
    (17, '30 1 * * *', 'America/New_York', 1, '2026-11-01 01:30-04'),
    (17, '30 1 * * *', 'America/New_York', 2, '2026-11-02 01:30-05'),
    (18, '30 2 * * *', 'America/New_York', 0, '2026-10-31 12:00-04'),
    (18, '30 2 * * *', 'America/New_York', 1, '2026-11-01 02:30-05'),
    (18, '30 2 * * *', 'America/New_York', 2, '2026-11-02 02:30-05'),
    (19, '0 2 * * *', 'America/New_York', 0, '2026-10-31 12:00-04'),
    (19, '0 2 * * *', 'America/New_York', 1, '2026-11-01 02:00-05'),
    (19, '0 2 * * *', 'America/New_York', 2, '2026-11-02 02:00-05'),
    -- Australia/Sydney, fall back 2026-04-05: 03:00 AEDT becomes 02:00 AEST.
    (20, '*/15 * * * *', 'Australia/Sydney', 0, '2026-04-05 02:30+11'),
    (20, '*/15 * * * *', 'Australia/Sydney', 1, '2026-04-05 02:45+11'),
    (20, '*/15 * * * *', 'Australia/Sydney', 2, '2026-04-05 02:00+10'),
    (20, '*/15 * * * *', 'Australia/Sydney', 3, '2026-04-05 02:15+10'),
    (20, '*/15 * * * *', 'Australia/Sydney', 4, '2026-04-05 02:30+10'),
    (20, '*/15 * * * *', 'Australia/Sydney', 5, '2026-04-05 02:45+10'),
    (20, '*/15 * * * *', 'Australia/Sydney', 6, '2026-04-05 03:00+10'),
    (21, '0 * * * *', 'Australia/Sydney', 0, '2026-04-05 01:30+11'),
    (21, '0 * * * *', 'Australia/Sydney', 1, '2026-04-05 02:00+11'),
    (21, '0 * * * *', 'Australia/Sydney', 2, '2026-04-05 02:00+10'),
    (21, '0 * * * *', 'Australia/Sydney', 3, '2026-04-05 03:00+10'),
    (22, '30 2 * * *', 'Australia/Sydney', 0, '2026-04-04 12:00+11'),
    (22, '30 2 * * *', 'Australia/Sydney', 1, '2026-04-05 02:30+11'),
    (22, '30 2 * * *', 'Australia/Sydney', 2, '2026-04-06 02:30+10'),
    (23, '0 2 * * *', 'Australia/Sydney', 0, '2026-04-04 12:00+11'),
    (23, '0 2 * * *', 'Australia/Sydney', 1, '2026-04-05 02:00+11'),
    (23, '0 2 * * *', 'Australia/Sydney', 2, '2026-04-06 02:00+10'),
    -- Australia/Sydney, spring forward 2026-10-04: 02:00 AEST becomes 03:00 AEDT.
    (24, '*/15 * * * *', 'Australia/Sydney', 0, '2026-10-04 01:30+10'),
    (24, '*/15 * * * *', 'Australia/Sydney', 1, '2026-10-04 01:45+10'),
    (24, '*/15 * * * *', 'Australia/Sydney', 2, '2026-10-04 03:00+11'),
    (24, '*/15 * * * *', 'Australia/Sydney', 3, '2026-10-04 03:15+11'),
    (25, '0 * * * *', 'Australia/Sydney', 0, '2026-10-04 00:30+10'),
    (25, '0 * * * *', 'Australia/Sydney', 1, '2026-10-04 01:00+10'),
    (25, '0 * * * *', 'Australia/Sydney', 2, '2026-10-04 03:00+11'),
    (25, '0 * * * *', 'Australia/Sydney', 3, '2026-10-04 04:00+11'),
    (26, '30 2 * * *', 'Australia/Sydney', 0, '2026-10-03 12:00+10'),
    (26, '30 2 * * *', 'Australia/Sydney', 1, '2026-10-04 03:00+11'),
    (26, '30 2 * * *', 'Australia/Sydney', 2, '2026-10-05 02:30+11'),
    (27, '0 2 * * *', 'Australia/Sydney', 0, '2026-10-03 12:00+10'),
    (27, '0 2 * * *', 'Australia/Sydney', 1, '2026-10-04 03:00+11'),
    (27, '0 2 * * *', 'Australia/Sydney', 2, '2026-10-05 02:00+11'),
    -- Leap days across 2025-2028, and 2100.
    (28, '0 0 29 2 *', 'UTC', 0, '2025-01-01 00:00+00'),
    (28, '0 0 29 2 *', 'UTC', 1, '2028-02-29 00:00+00'),
    (28, '0 0 29 2 *', 'UTC', 2, '2032-02-29 00:00+00'),
    (29, '0 0 29 2 *', 'UTC', 0, '2092-03-01 00:00+00'),
    (29, '0 0 29 2 *', 'UTC', 1, '2096-02-29 00:00+00'),
    (29, '0 0 29 2 *', 'UTC', 2, '2104-02-29 00:00+00')
),
checked AS (
    SELECT id, expression, time_zone, step, expected,
           sluice.cron_next(expression,
                            (lag(expected) OVER (PARTITION BY id ORDER BY step))::timestamptz,
                            time_zone) AS actual
    FROM sequence
)
SELECT id, expression, time_zone, step, expected,
       actual = expected::timestamptz AS ok,
       CASE WHEN actual IS DISTINCT FROM expected::timestamptz THEN actual END AS wrong_actual
FROM checked
WHERE step > 0
ORDER BY id, step;

-- Real-time pace: "*/15 * * * *" fires every 15 real minutes and
-- "0 * * * *" every real hour through all six changes of 2026.
WITH transition(time_zone, day_start) AS (VALUES
    ('Europe/Berlin', '2026-03-28 12:00+00'::timestamptz),
    ('Europe/Berlin', '2026-10-24 12:00+00'),
    ('America/New_York', '2026-03-07 12:00+00'),
    ('America/New_York', '2026-10-31 12:00+00'),
    ('Australia/Sydney', '2026-04-04 00:00+00'),
    ('Australia/Sydney', '2026-10-03 00:00+00')
),
pace(expression, period) AS (VALUES
    ('*/15 * * * *', interval '15 minutes'),
    ('0 * * * *', interval '1 hour')
)
SELECT time_zone, expression,
       bool_and(sluice.cron_next(expression, fire, time_zone) - fire = period) AS steady
FROM transition
CROSS JOIN pace
CROSS JOIN LATERAL generate_series(
    sluice.cron_next(expression, day_start, time_zone), day_start + interval '1 day', period) AS fire
GROUP BY time_zone, expression
ORDER BY time_zone, expression;

-- The time zone defaults to UTC.
SELECT sluice.cron_next('0 12 * * *', '2026-01-01 00:00+00') = '2026-01-01 12:00+00' AS default_utc;

-- Errors: unknown time zone (SL101), infinite timestamps, invalid expression (SL100).
\set VERBOSITY default
SELECT sluice.cron_next('0 0 * * *', '2026-01-01', 'Mars/Olympus_Mons');
SELECT sluice.cron_next('0 0 * * *', '2026-01-01', '');
SELECT sluice.cron_next('0 0 * * *', 'infinity');
SELECT sluice.cron_next('0 0 31 4,6,9,11 *', '2026-01-01');
DO $$
BEGIN
    PERFORM sluice.cron_next('0 0 * * *', '2026-01-01', 'Mars/Olympus_Mons');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'SQLSTATE %', SQLSTATE;
END
$$;
DO $$
BEGIN
    PERFORM sluice.cron_next('0 0 30 2 *', '2026-01-01');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'SQLSTATE %', SQLSTATE;
END
$$;
