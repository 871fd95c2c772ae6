-- Cron expressions, implemented in C (extension/src/cron*.c).
--
-- sluice.cron_validate checks an expression, and sluice.cron_next computes the
-- next fire time in an IANA time zone. Invalid expressions raise SL100 and
-- unknown time zones SL101. docs/cron.md describes the syntax and the
-- daylight-saving rule.

-- IMMUTABLE, because the result depends only on the text.
CREATE FUNCTION sluice.cron_validate(expression text)
    RETURNS void
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'sluice_cron_validate';

COMMENT ON FUNCTION sluice.cron_validate(text) IS
    'Raises SL100 if the cron expression is invalid or can never fire; returns nothing otherwise.';

-- IMMUTABLE like PostgreSQL's own timezone(text, timestamptz): the zone is an
-- argument, not the session's TimeZone setting. An update of the time zone
-- database can still change results for future dates, so do not index them.
CREATE FUNCTION sluice.cron_next(expression text, after timestamptz, time_zone text DEFAULT 'UTC')
    RETURNS timestamptz
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'sluice_cron_next';

COMMENT ON FUNCTION sluice.cron_next(text, timestamptz, text) IS
    'First fire time of the cron expression strictly after "after", with fields read as local time in time_zone '
    '(IANA name, default UTC). Raises SL100 for an invalid expression and SL101 for an unknown time zone.';
