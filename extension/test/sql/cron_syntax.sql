-- Cron expression syntax: accepted forms, equivalent spellings, and the
-- messages and SQLSTATEs of invalid expressions.
SET timezone = 'UTC';

-- Returns 'valid', or the SQLSTATE and message that cron_validate raises.
CREATE FUNCTION pg_temp.validation_result(p_expression text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sluice.cron_validate(p_expression);
    RETURN 'valid';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Returns the first p_count fire times after p_after.
CREATE FUNCTION pg_temp.fire_times(p_expression text, p_after timestamptz, p_count integer)
RETURNS timestamptz[] LANGUAGE plpgsql AS $$
DECLARE
    v_fires timestamptz[] := '{}';
    v_next timestamptz := p_after;
BEGIN
    FOR i IN 1 .. p_count LOOP
        v_next := sluice.cron_next(p_expression, v_next);
        v_fires := v_fires || v_next;
    END LOOP;
    RETURN v_fires;
END
$$;

-- Function properties.
SELECT proname, provolatile, proisstrict, proparallel
FROM pg_proc
WHERE pronamespace = 'sluice'::regnamespace AND proname IN ('cron_validate', 'cron_next')
ORDER BY proname;

-- Accepted forms, one per feature.
SELECT expression, pg_temp.validation_result(expression) AS result
FROM (VALUES
    ('* * * * *'),
    ('0 0 * * *'),
    ('*/15 * * * *'),
    ('10-50/5 * * * *'),
    ('5/10 * * * *'),
    ('0,30 8-18/2 * * *'),
    ('0 0 1 jan *'),
    ('0 0 1 JAN-MAR,oct *'),
    ('0 9 * * mon-fri'),
    ('0 9 * * Sun'),
    ('0 0 * * 7'),
    ('0 0 * * 0-7'),
    ('0 0 * * 5-7'),
    ('0 0 29 2 *'),
    ('0 0 31 1,2 *'),
    ('0 0 31 2 MON'),
    ('*/10 * * * * *'),
    ('0 0 0 1 1 *'),
    ('@yearly'),
    ('@annually'),
    ('@monthly'),
    ('@weekly'),
    ('@daily'),
    ('@midnight'),
    ('@hourly'),
    ('@Daily'),
    ('  0   0  *  *  *  '),
    (E'0\t0 * * *')
) AS t(expression);

-- Equivalent spellings give the same 50 fire times from 2026-01-01.
SELECT a, b,
       pg_temp.fire_times(a, '2026-01-01', 50) = pg_temp.fire_times(b, '2026-01-01', 50) AS same
FROM (VALUES
    ('@yearly', '0 0 1 1 *'),
    ('@annually', '0 0 1 1 *'),
    ('@monthly', '0 0 1 * *'),
    ('@weekly', '0 0 * * 0'),
    ('@daily', '0 0 * * *'),
    ('@midnight', '0 0 * * *'),
    ('@hourly', '0 * * * *'),
    ('0 0 * * 7', '0 0 * * 0'),
    ('0 0 * * sun', '0 0 * * 0'),
    ('0 0 * * MON-FRI', '0 0 * * 1-5'),
    ('0 0 * * 5-7', '0 0 * * 0,5,6'),
    ('0 0 * * */2', '0 0 * * 0,2,4,6'),
    ('0 0 1 JAN-MAR *', '0 0 1 1-3 *'),
    ('0 0 1 jul,Dec *', '0 0 1 7,12 *'),
    ('5/10 * * * *', '5-59/10 * * * *'),
    ('5/10 * * * *', '5,15,25,35,45,55 * * * *'),
    ('*/15 * * * *', '0,15,30,45 * * * *'),
    ('10-50/20 * * * *', '10,30,50 * * * *'),
    ('0 */6 * * *', '0 0,6,12,18 * * *'),
    ('0 0 0 * * *', '0 0 * * *'),
    ('*/20 0 0 * * *', '0,20,40 0 0 * * *')
) AS t(a, b);

-- Invalid expressions with their SQLSTATE and message.
SELECT expression, pg_temp.validation_result(expression) AS result
FROM (VALUES
    (''),
    ('x y'),
    ('* * * * * * *'),
    ('61 * * * *'),
    ('* 24 * * *'),
    ('* * 0 * *'),
    ('* * 32 * *'),
    ('* * * 0 *'),
    ('* * * 13 *'),
    ('* * * * 8'),
    ('60 * * * * *'),
    ('99999999999 * * * *'),
    ('* * * FOO *'),
    ('* * * * FRIDAY'),
    ('* * * * JAN'),
    ('* MON * * *'),
    ('*/0 * * * *'),
    ('*/ * * * *'),
    ('*/x * * * *'),
    ('*/5x * * * *'),
    ('20-10 * * * *'),
    ('* * * * FRI-MON'),
    ('1,,2 * * * *'),
    (',1 * * * *'),
    ('1, * * * *'),
    ('5x * * * *'),
    ('1-2-3 * * * *'),
    ('1- * * * *'),
    ('-5 * * * *'),
    ('? * * * *'),
    ('*-5 * * * *'),
    ('@reboot'),
    ('@daily 5'),
    ('0 0 31 2 *'),
    ('0 0 30 2 *'),
    ('0 0 30,31 feb *'),
    ('0 0 31 4,6,9,11 *')
) AS t(expression);

-- The full error report, with DETAIL and HINT, for each kind of error.
SELECT sluice.cron_validate('x y');
SELECT sluice.cron_validate('61 * * * *');
SELECT sluice.cron_validate('* MON * * *');
SELECT sluice.cron_validate('* * * FOO *');
SELECT sluice.cron_validate('* * * * FOO');
SELECT sluice.cron_validate('*/0 * * * *');
SELECT sluice.cron_validate('20-10 * * * *');
SELECT sluice.cron_validate('1,,2 * * * *');
SELECT sluice.cron_validate('5x * * * *');
SELECT sluice.cron_validate('@reboot');
SELECT sluice.cron_validate('0 0 31 4,6,9,11 *');
SELECT sluice.cron_next('0 0 31 2 *', '2026-01-01');

-- NULL input returns NULL, because both functions are STRICT.
SELECT sluice.cron_validate(NULL) IS NULL AS validate_null,
       sluice.cron_next(NULL, '2026-01-01') IS NULL AS next_null;
