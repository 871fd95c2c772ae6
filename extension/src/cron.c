/*
 * cron.c
 *     SQL-callable cron functions: sluice.cron_validate and sluice.cron_next.
 *
 * These functions convert between SQL values and the parser (cron_parse.c)
 * and next-fire search (cron_next.c). Time zones are looked up in
 * PostgreSQL's own time zone database with pg_tzset(), so results do not
 * depend on the C library or the TZ environment variable.
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "cron.h"

PG_FUNCTION_INFO_V1(sluice_cron_validate);
PG_FUNCTION_INFO_V1(sluice_cron_next);

/* Seconds between the Unix epoch and the PostgreSQL epoch (2000-01-01). */
#define POSTGRES_EPOCH_UNIX_SECONDS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* The last parsed expression, kept across calls of one SQL function call site. */
typedef struct CronCache
{
	text	   *expression;		/* copy in fn_mcxt */
	CronSchedule schedule;
} CronCache;

/*
 * Parse the expression, reusing the result of the previous call from the
 * same call site when the text is unchanged, because scheduling queries
 * often evaluate a few expressions for many rows.
 */
static const CronSchedule *
parse_cached(FunctionCallInfo fcinfo, text *expression)
{
	CronCache  *cache = (CronCache *) fcinfo->flinfo->fn_extra;
	char	   *expression_string;

	if (cache != NULL && cache->expression != NULL &&
		VARSIZE_ANY_EXHDR(cache->expression) == VARSIZE_ANY_EXHDR(expression) &&
		memcmp(VARDATA_ANY(cache->expression), VARDATA_ANY(expression),
			   VARSIZE_ANY_EXHDR(expression)) == 0)
		return &cache->schedule;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CronCache));
		fcinfo->flinfo->fn_extra = cache;
	}
	if (cache->expression != NULL)
	{
		pfree(cache->expression);
		cache->expression = NULL;
	}

	/* Parse before caching, so that an invalid expression is never cached. */
	expression_string = text_to_cstring(expression);
	cron_parse(expression_string, &cache->schedule);
	pfree(expression_string);

	cache->expression = (text *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
													VARSIZE_ANY(expression));
	memcpy(cache->expression, expression, VARSIZE_ANY(expression));
	return &cache->schedule;
}

/* Look up a time zone by name in PostgreSQL's time zone database, raising SL101 if it is unknown. */
static pg_tz *
lookup_time_zone(const char *name)
{
	pg_tz	   *zone = pg_tzset(name);

	if (zone == NULL)
		ereport(ERROR,
				errcode(ERRCODE_SLUICE_UNKNOWN_TIME_ZONE),
				errmsg("time zone \"%s\" not recognized", name),
				errhint("Use an IANA time zone name such as Europe/Berlin."));
	if (!pg_tz_acceptable(zone))
		ereport(ERROR,
				errcode(ERRCODE_SLUICE_UNKNOWN_TIME_ZONE),
				errmsg("time zone \"%s\" uses leap seconds", name),
				errdetail("PostgreSQL does not support leap seconds."),
				errhint("Use an IANA time zone name such as Europe/Berlin."));
	return zone;
}

/* Raise SL100 if the expression is invalid or can never fire. */
Datum
sluice_cron_validate(PG_FUNCTION_ARGS)
{
	parse_cached(fcinfo, PG_GETARG_TEXT_PP(0));
	PG_RETURN_VOID();
}

/* Return the first fire time strictly after the given timestamp in the given time zone. */
Datum
sluice_cron_next(PG_FUNCTION_ARGS)
{
	text	   *expression = PG_GETARG_TEXT_PP(0);
	TimestampTz after = PG_GETARG_TIMESTAMPTZ(1);
	char	   *zone_name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	const CronSchedule *schedule;
	pg_tz	   *zone;
	pg_time_t	after_seconds;
	pg_time_t	limit_seconds;
	pg_time_t	fire_seconds;
	TimestampTz fire;

	schedule = parse_cached(fcinfo, expression);
	zone = lookup_time_zone(zone_name);

	if (TIMESTAMP_NOT_FINITE(after))
		ereport(ERROR,
				errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				errmsg("cron_next: \"after\" must be a finite timestamp"));

	/* Fire times are whole seconds, so rounding down keeps "strictly after" exact. */
	after_seconds = after / USECS_PER_SEC;
	if (after % USECS_PER_SEC < 0)
		after_seconds--;
	after_seconds += POSTGRES_EPOCH_UNIX_SECONDS;
	limit_seconds = after_seconds + (int64) CRON_SEARCH_YEARS * 366 * SECS_PER_DAY;

	if (!cron_next_fire(schedule, zone, after_seconds, limit_seconds, &fire_seconds))
		ereport(ERROR,
				errcode(ERRCODE_SLUICE_INVALID_CRON_EXPRESSION),
				errmsg("cron expression \"%s\" does not fire within %d years after %s in time zone \"%s\"",
					   text_to_cstring(expression), CRON_SEARCH_YEARS,
					   timestamptz_to_str(after), zone_name),
				errdetail("Every match of the expression falls into a daylight-saving gap."));

	fire = (fire_seconds - POSTGRES_EPOCH_UNIX_SECONDS) * USECS_PER_SEC;
	if (!IS_VALID_TIMESTAMP(fire))
		ereport(ERROR,
				errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				errmsg("timestamp out of range"));

	PG_RETURN_TIMESTAMPTZ(fire);
}
