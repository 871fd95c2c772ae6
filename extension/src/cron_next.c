/*
 * cron_next.c
 *     Find the next fire time of a schedule in a time zone, applying the
 *     daylight-saving rule below.
 *
 * Vocabulary: a "gap" is the range of local times skipped when clocks move
 * forward (02:00-02:59 in Europe/Berlin on the last Sunday of March). An
 * "overlap" is the range of local times that occur twice when clocks move
 * back (02:00-02:59 on the last Sunday of October). A "segment" is a span of
 * instants with one constant UTC offset, bounded by two transitions. The
 * transitions come from PostgreSQL's time zone database through
 * pg_next_dst_boundary(), never from the C library.
 *
 * Daylight-saving rule. A schedule is one of two kinds, decided by its hour
 * field alone:
 *
 *   Fixed-time: every item of the hour field is a single value ("2",
 *   "2,14"). Each matching local time fires at most once per local day:
 *     - a local time in an overlap fires at its first occurrence only.
 *     - a local time in a gap fires at the first instant after the gap,
 *       which is the transition itself (02:30 Europe/Berlin on 2026-03-29
 *       fires at 03:00 CEST). Several skipped times that map to that
 *       instant fire once.
 *
 *   Interval-like: the hour field contains "*", a range or a step. The
 *   schedule follows real time: it fires at every instant whose local
 *   wall-clock reading matches. Local times in an overlap therefore fire at
 *   both occurrences, and local times in a gap do not fire at all. With a
 *   one-hour transition this keeps the real-time pace of schedules whose
 *   hour field is "*": "0,15,30,45 * * * *" fires every 15 real minutes and
 *   "0 * * * *" every real hour through both changes. Schedules that step
 *   over hours ("0 0-23/2 * * *") skip a match that falls into a gap and
 *   fire twice for a match in an overlap, so their real-time spacing
 *   changes around a transition.
 *
 * Search bound: callers pass a limit instant and the search gives up past
 * it. The parser already rejects expressions that can never fire, and the
 * longest wait between two fire times of a valid expression is 8 years
 * ("0 0 29 2 *" from 2096 to 2104), so a limit of CRON_SEARCH_YEARS (cron.h)
 * is reached only when every match of an interval-like schedule falls into
 * a gap.
 */
#include "postgres.h"

#include "datatype/timestamp.h"

#include "cron.h"

/* More than any UTC offset in the time zone database, which stay under 1 day. */
#define OFFSET_WINDOW_SECONDS (2 * SECS_PER_DAY)

/* Segments examined around one local time, far more than a two-day window holds in practice. */
#define MAX_SEGMENTS_PER_LOCAL_TIME 16

/* One span of constant UTC offset, as reported by pg_next_dst_boundary(). */
typedef struct Segment
{
	long int	offset;			/* UTC offset in seconds within the segment */
	bool		has_end;		/* false when no later transition is known */
	pg_time_t	end;			/* first instant after the segment */
	long int	next_offset;	/* UTC offset from end onwards */
} Segment;

/* Look up the segment that contains instant t. */
static void
find_segment(pg_time_t t, const pg_tz *zone, Segment *segment)
{
	int			before_isdst;
	int			after_isdst;
	int			found;

	found = pg_next_dst_boundary(&t, &segment->offset, &before_isdst,
								 &segment->end, &segment->next_offset,
								 &after_isdst, zone);
	if (found < 0)
		ereport(ERROR,
				errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				errmsg("time zone transition lookup failed near Unix time " INT64_FORMAT, (int64) t));
	segment->has_end = (found == 1);
}

/*
 * Map a local time to the instant at which a fixed-time schedule fires for
 * it: its only or first occurrence, or the end of the gap it falls in.
 */
static pg_time_t
first_instant_for_local(int64 local, const pg_tz *zone)
{
	Segment		segment;
	pg_time_t	segment_start;

	/* Start one window early so that the first segment begins before local. */
	find_segment(local - OFFSET_WINDOW_SECONDS, zone, &segment);
	segment_start = PG_INT64_MIN;

	for (int i = 0; i < MAX_SEGMENTS_PER_LOCAL_TIME; i++)
	{
		pg_time_t	candidate = local - segment.offset;

		/* The previous segment ended before local and this one starts after it: a gap. */
		if (candidate < segment_start)
			return segment_start;
		if (!segment.has_end || candidate < segment.end)
			return candidate;

		segment_start = segment.end;
		find_segment(segment.end, zone, &segment);
	}

	elog(ERROR, "more than %d time zone transitions within two days of one local time",
		 MAX_SEGMENTS_PER_LOCAL_TIME);
	return 0;					/* not reached */
}

/* Find the next fire time of a fixed-time schedule, following the rule at the top of the file. */
static bool
next_fixed_time_fire(const CronSchedule *schedule, const pg_tz *zone,
					 pg_time_t after, pg_time_t limit, pg_time_t *fire)
{
	Segment		segment;
	int64		search_from;
	int64		limit_local = limit + OFFSET_WINDOW_SECONDS;

	find_segment(after, zone, &segment);
	search_from = after + segment.offset;

	/*
	 * Local times are tried in order, and their instants never decrease. A
	 * local time can still map to an instant at or before "after" when
	 * "after" lies in the second occurrence of an overlap, so keep going.
	 */
	for (;;)
	{
		int64		local;
		pg_time_t	instant;

		if (!cron_next_local_match(schedule, search_from, limit_local, &local))
			return false;

		instant = first_instant_for_local(local, zone);
		if (instant > after)
		{
			*fire = instant;
			return true;
		}
		search_from = local;
	}
}

/* Find the next fire time of an interval-like schedule, one segment at a time. */
static bool
next_real_time_fire(const CronSchedule *schedule, const pg_tz *zone,
					pg_time_t after, pg_time_t limit, pg_time_t *fire)
{
	Segment		segment;
	pg_time_t	search_after = after;

	find_segment(after, zone, &segment);

	for (;;)
	{
		pg_time_t	last = limit;
		int64		local;

		if (segment.has_end && segment.end - 1 < last)
			last = segment.end - 1;

		/* Within one segment local time is the instant plus a constant offset. */
		if (search_after < last &&
			cron_next_local_match(schedule, search_after + segment.offset,
								  last + segment.offset, &local))
		{
			*fire = local - segment.offset;
			return true;
		}

		if (!segment.has_end || segment.end > limit)
			return false;

		/* Continue with instants from the transition onwards. */
		search_after = segment.end - 1;
		find_segment(segment.end, zone, &segment);
	}
}

/*
 * Find the first fire time strictly after "after" and store it in *fire.
 * Returns false when there is none up to "limit". Both are Unix seconds.
 */
bool
cron_next_fire(const CronSchedule *schedule, const pg_tz *zone,
			   pg_time_t after, pg_time_t limit, pg_time_t *fire)
{
	if (schedule->fixed_hours)
		return next_fixed_time_fire(schedule, zone, after, limit, fire);
	return next_real_time_fire(schedule, zone, after, limit, fire);
}
