/*
 * cron.h
 *     Parsed cron schedules, shared by the parser, the wall-clock matcher
 *     and the time-zone-aware next-fire search.
 *
 * Vocabulary:
 *   expression  the text a user writes, such as "0 9 * * MON-FRI" or "@daily".
 *   schedule    the parsed expression: one bit set per field.
 *   local time  a wall-clock time in some time zone, stored as seconds since
 *               1970-01-01 00:00:00 of that wall clock (no offset applied).
 *   instant     a point in real time, stored as Unix seconds (pg_time_t).
 *   fire time   an instant at which the schedule runs.
 */
#ifndef SLUICE_CRON_H
#define SLUICE_CRON_H

#include "pgtime.h"
#include "utils/elog.h"

/* SQLSTATE SL100: the cron expression is invalid or can never fire. */
#define ERRCODE_SLUICE_INVALID_CRON_EXPRESSION MAKE_SQLSTATE('S', 'L', '1', '0', '0')

/* SQLSTATE SL101: the time zone name is not in PostgreSQL's time zone database. */
#define ERRCODE_SLUICE_UNKNOWN_TIME_ZONE MAKE_SQLSTATE('S', 'L', '1', '0', '1')

/*
 * How far ahead cron_next() searches before it raises. It exceeds the 8-year
 * wait of "0 0 29 2 *" across 2100, which is not a leap year.
 */
#define CRON_SEARCH_YEARS 10

/*
 * A parsed cron expression. Bit i of a field is set when value i matches.
 * Day-of-month uses bits 1-31, month bits 1-12 and day-of-week bits 0-6
 * (0 is Sunday, and the input value 7 is stored as 0).
 */
typedef struct CronSchedule
{
	uint64		seconds;		/* bits 0-59; only bit 0 for 5-field input */
	uint64		minutes;		/* bits 0-59 */
	uint32		hours;			/* bits 0-23 */
	uint32		days_of_month;	/* bits 1-31 */
	uint16		months;			/* bits 1-12 */
	uint8		days_of_week;	/* bits 0-6 */

	/* True unless the field is written as a bare "*". */
	bool		day_of_month_restricted;
	bool		day_of_week_restricted;

	/*
	 * True when every item of the hour field is a single value ("2" or
	 * "2,14"). Such a schedule fires at fixed local times. Any "*", range or
	 * step in the hour field makes it follow real time across daylight-saving
	 * changes instead (see cron_next.c).
	 */
	bool		fixed_hours;
} CronSchedule;

/* cron_parse.c */
extern void cron_parse(const char *expression, CronSchedule *schedule);

/* cron_match.c */
extern bool cron_next_local_match(const CronSchedule *schedule,
								  int64 after_local, int64 limit_local,
								  int64 *match_local);

/* cron_next.c */
extern bool cron_next_fire(const CronSchedule *schedule, const pg_tz *zone,
						   pg_time_t after, pg_time_t limit,
						   pg_time_t *fire);

#endif							/* SLUICE_CRON_H */
