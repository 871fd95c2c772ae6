/*
 * cron_match.c
 *     Find the next local time that a schedule matches, ignoring time zones.
 *
 * The search works on a plain wall clock (see "local time" in cron.h) and
 * skips whole fields rather than stepping second by second: a month that
 * does not match is skipped in one step, then a day, an hour, a minute. A
 * call therefore costs at most a few steps per candidate day.
 *
 * Day rule: when both the day-of-month and the day-of-week fields are
 * restricted (neither is a bare "*"), a day matches if either field matches,
 * as in Vixie cron. Otherwise both must match, which in effect means the
 * restricted one.
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "port/pg_bitutils.h"
#include "utils/datetime.h"

#include "cron.h"

/* A wall-clock time broken into the fields that a cron schedule matches. */
typedef struct LocalTime
{
	int			year;
	int			month;
	int			day;
	int			hour;
	int			minute;
	int			second;
} LocalTime;

/* Return the lowest value >= from whose bit is set, or -1 if there is none up to max_value. */
static int
next_set_bit(uint64 bits, int from, int max_value)
{
	int			value;

	if (from > max_value)
		return -1;
	bits &= ~((UINT64CONST(1) << from) - 1);
	if (bits == 0)
		return -1;
	value = pg_rightmost_one_pos64(bits);
	return value <= max_value ? value : -1;
}

/* Return whether the schedule's day rule accepts the given date. */
static bool
day_matches(const CronSchedule *schedule, int year, int month, int day)
{
	bool		day_of_month_match = (schedule->days_of_month & ((uint32) 1 << day)) != 0;
	int			weekday = j2day(date2j(year, month, day));
	bool		day_of_week_match = (schedule->days_of_week & (1 << weekday)) != 0;

	if (schedule->day_of_month_restricted && schedule->day_of_week_restricted)
		return day_of_month_match || day_of_week_match;
	return day_of_month_match && day_of_week_match;
}

/* Convert local seconds since 1970-01-01 00:00:00 into its fields. */
static void
split_local_time(int64 local, LocalTime *time)
{
	int64		days = local / SECS_PER_DAY;
	int64		seconds = local % SECS_PER_DAY;

	/* Round toward minus infinity for local times before 1970. */
	if (seconds < 0)
	{
		seconds += SECS_PER_DAY;
		days--;
	}
	j2date((int) (days + UNIX_EPOCH_JDATE), &time->year, &time->month, &time->day);
	time->hour = (int) (seconds / SECS_PER_HOUR);
	time->minute = (int) (seconds / SECS_PER_MINUTE % MINS_PER_HOUR);
	time->second = (int) (seconds % SECS_PER_MINUTE);
}

/* Convert fields back into local seconds. Days past the end of a month roll into the next month. */
static int64
join_local_time(const LocalTime *time)
{
	int64		days = date2j(time->year, time->month, time->day) - UNIX_EPOCH_JDATE;

	return days * SECS_PER_DAY + time->hour * SECS_PER_HOUR +
		time->minute * SECS_PER_MINUTE + time->second;
}

/* Move to midnight of the given day of the current month. The day check catches a day past the month's end. */
static void
start_day(LocalTime *time, int day)
{
	time->day = day;
	time->hour = 0;
	time->minute = 0;
	time->second = 0;
}

/* Move to midnight of the first day of the given month. The month check catches month 13. */
static void
start_month(LocalTime *time, int month)
{
	time->month = month;
	start_day(time, 1);
}

/*
 * Find the first local time strictly after after_local that the schedule
 * matches and store it in *match_local. Returns false when there is none up
 * to limit_local.
 */
bool
cron_next_local_match(const CronSchedule *schedule, int64 after_local,
					  int64 limit_local, int64 *match_local)
{
	LocalTime	time;

	split_local_time(after_local + 1, &time);

	for (;;)
	{
		int			month;
		int			days_in_month;
		int			hour;
		int			minute;
		int			second;

		month = next_set_bit(schedule->months, time.month, 12);
		if (month < 0)
		{
			time.year++;
			start_month(&time, 1);
			continue;
		}
		if (month != time.month)
			start_month(&time, month);

		/* Every step below moves forward in time, so this check ends the loop. */
		if (join_local_time(&time) > limit_local)
			return false;

		days_in_month = day_tab[isleap(time.year)][time.month - 1];
		if (!schedule->day_of_week_restricted)
		{
			/* Only the day of month decides, so jump straight to the next one. */
			int			day = next_set_bit(schedule->days_of_month, time.day, days_in_month);

			if (day < 0)
			{
				start_month(&time, time.month + 1);
				continue;
			}
			if (day != time.day)
				start_day(&time, day);
		}
		else if (time.day > days_in_month)
		{
			start_month(&time, time.month + 1);
			continue;
		}
		else if (!day_matches(schedule, time.year, time.month, time.day))
		{
			start_day(&time, time.day + 1);
			continue;
		}

		hour = next_set_bit(schedule->hours, time.hour, 23);
		if (hour < 0)
		{
			start_day(&time, time.day + 1);
			continue;
		}
		if (hour != time.hour)
		{
			time.hour = hour;
			time.minute = 0;
			time.second = 0;
		}

		minute = next_set_bit(schedule->minutes, time.minute, 59);
		if (minute < 0)
		{
			time.hour++;
			time.minute = 0;
			time.second = 0;
			continue;
		}
		if (minute != time.minute)
		{
			time.minute = minute;
			time.second = 0;
		}

		second = next_set_bit(schedule->seconds, time.second, 59);
		if (second < 0)
		{
			time.minute++;
			time.second = 0;
			continue;
		}
		time.second = second;

		*match_local = join_local_time(&time);
		return *match_local <= limit_local;
	}
}
