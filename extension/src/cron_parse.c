/*
 * cron_parse.c
 *     Parse a cron expression into a CronSchedule, or raise SL100.
 *
 * Syntax accepted:
 *   5 fields   minute hour day-of-month month day-of-week
 *   6 fields   second minute hour day-of-month month day-of-week
 *   macros     @yearly (@annually), @monthly, @weekly, @daily (@midnight),
 *              @hourly, each standing alone
 *
 * A field is a comma-separated list of items. An item is "*", a value, or a
 * range "low-high", optionally followed by "/step". A step after "*" covers
 * the whole field, after a range the range, and after a single value the
 * values from it to the end of the field ("5/10" in the minute field selects
 * 5, 15, ..., 55). Months accept JAN-DEC and days of the week SUN-SAT, in
 * any letter case. Day of week 0 and 7 are both Sunday. Ranges do not wrap
 * around, so "FRI-MON" is rejected.
 *
 * An expression whose day-of-month field selects no day that exists in any
 * selected month (such as "0 0 31 2 *") can never fire and is rejected here,
 * so the next-fire search never has to prove that nothing matches.
 */
#include "postgres.h"

#include <ctype.h>

#include "cron.h"

/* The static description of one cron field. */
typedef struct CronField
{
	const char *name;			/* as used in messages: "minute field" */
	int			min_value;
	int			max_value;		/* largest value accepted in input */
	int			star_max_value; /* largest value that "*" selects */
	const char *const *names;	/* three-letter names, or NULL */
	int			first_name_value;	/* value of names[0] */
	const char *names_hint;		/* errhint for an unknown name */
} CronField;

static const char *const month_names[] = {
	"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
	"JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL
};

static const char *const weekday_names[] = {
	"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL
};

static const CronField second_field = {"second", 0, 59, 59, NULL, 0, NULL};
static const CronField minute_field = {"minute", 0, 59, 59, NULL, 0, NULL};
static const CronField hour_field = {"hour", 0, 23, 23, NULL, 0, NULL};
static const CronField day_of_month_field = {"day-of-month", 1, 31, 31, NULL, 0, NULL};
static const CronField month_field = {
	"month", 1, 12, 12, month_names, 1, "Use JAN-DEC or 1-12."
};
static const CronField day_of_week_field = {
	"day-of-week", 0, 7, 6, weekday_names, 0, "Use SUN-SAT or 0-7, where 0 and 7 are both Sunday."
};

/* The five-field expressions that the macros stand for. */
typedef struct CronMacro
{
	const char *name;
	const char *expansion;
} CronMacro;

static const CronMacro macros[] = {
	{"@yearly", "0 0 1 1 *"},
	{"@annually", "0 0 1 1 *"},
	{"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"},
	{"@daily", "0 0 * * *"},
	{"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
	{NULL, NULL}
};

/* Days in each month of a leap year, so February allows the 29th. */
static const int max_days_in_month[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

#define CRON_MAX_FIELDS 6

/* Raise SL100 with only a primary message. */
#define raise_invalid_expression(...) \
	ereport(ERROR, \
			errcode(ERRCODE_SLUICE_INVALID_CRON_EXPRESSION), \
			errmsg(__VA_ARGS__))

/* Parse one value (a number or, where the field allows, a name) at *cursor and advance past it. */
static int
parse_value(const CronField *field, const char *item, const char **cursor)
{
	const char *start = *cursor;
	const char *end = start;
	char	   *text;

	if (isdigit((unsigned char) *end))
	{
		int			value = 0;

		while (isdigit((unsigned char) *end))
		{
			/* Cap the value so that long digit strings cannot overflow. */
			if (value <= field->max_value)
				value = value * 10 + (*end - '0');
			end++;
		}
		*cursor = end;
		if (value < field->min_value || value > field->max_value)
		{
			text = pnstrdup(start, end - start);
			raise_invalid_expression("%s field: %s is out of range %d-%d",
						field->name, text, field->min_value, field->max_value);
		}
		return value;
	}

	if (isalpha((unsigned char) *end))
	{
		while (isalpha((unsigned char) *end))
			end++;
		*cursor = end;
		text = pnstrdup(start, end - start);

		if (field->names == NULL)
			ereport(ERROR,
					errcode(ERRCODE_SLUICE_INVALID_CRON_EXPRESSION),
					errmsg("%s field: invalid value \"%s\"", field->name, text),
					errdetail("The %s field accepts only numbers.", field->name));

		for (int i = 0; field->names[i] != NULL; i++)
		{
			if (pg_strcasecmp(text, field->names[i]) == 0)
				return field->first_name_value + i;
		}
		ereport(ERROR,
				errcode(ERRCODE_SLUICE_INVALID_CRON_EXPRESSION),
				errmsg("%s field: unknown name \"%s\"", field->name, text),
				errhint("%s", field->names_hint));
	}

	if (*end == '\0')
		raise_invalid_expression("%s field: missing value in item \"%s\"", field->name, item);
	raise_invalid_expression("%s field: unexpected text \"%s\" in item \"%s\"",
				field->name, start, item);
	return 0;					/* not reached */
}

/* Parse the step after "/" at *cursor and advance past it, raising unless it is at least 1. */
static int
parse_step(const CronField *field, const char *item, const char **cursor)
{
	const char *start = *cursor;
	const char *end = start;
	int			step = 0;

	while (isdigit((unsigned char) *end))
	{
		if (step <= field->max_value)
			step = step * 10 + (*end - '0');
		end++;
	}
	*cursor = end;

	if (end == start || step < 1)
		ereport(ERROR,
				errcode(ERRCODE_SLUICE_INVALID_CRON_EXPRESSION),
				errmsg("%s field: invalid step \"%s\" in item \"%s\"",
					   field->name, pnstrdup(start, strcspn(start, "-/")), item),
				errdetail("A step must be a whole number of at least 1."));
	return step;
}

/*
 * Parse one list item (such as "*", "5", "1-5", "10-50/5" or "5/10") and
 * return its bits. Sets *is_single when the item is one plain value.
 */
static uint64
parse_item(const CronField *field, const char *item, bool *is_single)
{
	const char *cursor = item;
	int			low;
	int			high;
	int			step = 1;
	bool		is_star = false;
	bool		is_range = false;
	uint64		bits = 0;

	if (*cursor == '*')
	{
		is_star = true;
		low = field->min_value;
		high = field->star_max_value;
		cursor++;
	}
	else
	{
		const char *range_start = cursor;

		low = parse_value(field, item, &cursor);
		high = low;
		if (*cursor == '-')
		{
			cursor++;
			is_range = true;
			high = parse_value(field, item, &cursor);
			if (high < low)
				ereport(ERROR,
						errcode(ERRCODE_SLUICE_INVALID_CRON_EXPRESSION),
						errmsg("%s field: range %s is reversed", field->name,
							   pnstrdup(range_start, cursor - range_start)),
						errhint("Write the lower bound first, because ranges do not wrap around."));
		}
	}

	if (*cursor == '/')
	{
		cursor++;
		step = parse_step(field, item, &cursor);

		/* "5/10" means from 5 to the end of the field, every 10. */
		if (!is_star && !is_range)
			high = field->star_max_value;
	}

	if (*cursor != '\0')
		raise_invalid_expression("%s field: unexpected text \"%s\" in item \"%s\"",
					field->name, cursor, item);

	for (int value = low; value <= high; value += step)
		bits |= UINT64CONST(1) << value;

	*is_single = !is_star && !is_range && step == 1;
	return bits;
}

/*
 * Parse one field's comma-separated list and return its bits. Sets
 * *all_single when every item is one plain value.
 */
static uint64
parse_field(const CronField *field, const char *text, bool *all_single)
{
	char	   *list = pstrdup(text);
	char	   *item = list;
	uint64		bits = 0;

	*all_single = true;
	for (;;)
	{
		char	   *comma = strchr(item, ',');
		bool		is_single;

		if (comma != NULL)
			*comma = '\0';
		if (*item == '\0')
			ereport(ERROR,
					errcode(ERRCODE_SLUICE_INVALID_CRON_EXPRESSION),
					errmsg("%s field: empty item in list \"%s\"", field->name, text),
					errhint("Remove the extra comma."));

		bits |= parse_item(field, item, &is_single);
		*all_single = *all_single && is_single;

		if (comma == NULL)
			break;
		item = comma + 1;
	}

	pfree(list);
	return bits;
}

/* Split the expression at whitespace into at most max_tokens tokens and return how many there are. */
static int
split_fields(char *copy, char **tokens, int max_tokens)
{
	int			count = 0;
	char	   *cursor = copy;

	for (;;)
	{
		while (isspace((unsigned char) *cursor))
			*cursor++ = '\0';
		if (*cursor == '\0')
			break;
		if (count < max_tokens)
			tokens[count] = cursor;
		count++;
		while (*cursor != '\0' && !isspace((unsigned char) *cursor))
			cursor++;
	}
	return count;
}

/* Return the five-field expansion of a macro such as "@daily", or raise. */
static const char *
expand_macro(const char *expression, const char *macro, int token_count)
{
	if (token_count != 1)
		ereport(ERROR,
				errcode(ERRCODE_SLUICE_INVALID_CRON_EXPRESSION),
				errmsg("invalid cron expression \"%s\": unexpected text after macro \"%s\"",
					   expression, macro));

	for (int i = 0; macros[i].name != NULL; i++)
	{
		if (pg_strcasecmp(macro, macros[i].name) == 0)
			return macros[i].expansion;
	}
	ereport(ERROR,
			errcode(ERRCODE_SLUICE_INVALID_CRON_EXPRESSION),
			errmsg("invalid cron expression \"%s\": unknown macro \"%s\"", expression, macro),
			errhint("Use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly."));
	return NULL;				/* not reached */
}

/*
 * Raise when the day-of-month and month fields together select no existing
 * day. This matters only when the day-of-week field is "*", because a
 * restricted day of week matches some day of every month.
 */
static void
check_can_fire(const char *expression, const CronSchedule *schedule)
{
	if (schedule->day_of_week_restricted)
		return;

	for (int month = 1; month <= 12; month++)
	{
		uint32		days_in_month;

		if ((schedule->months & (1 << month)) == 0)
			continue;
		days_in_month = ((UINT64CONST(1) << (max_days_in_month[month] + 1)) - 1) & ~UINT64CONST(1);
		if ((schedule->days_of_month & days_in_month) != 0)
			return;
	}

	ereport(ERROR,
			errcode(ERRCODE_SLUICE_INVALID_CRON_EXPRESSION),
			errmsg("invalid cron expression \"%s\": it can never fire", expression),
			errdetail("None of the selected months has any of the selected days of the month."));
}

/* Parse a cron expression into *schedule, raising SL100 if it is invalid or can never fire. */
void
cron_parse(const char *expression, CronSchedule *schedule)
{
	char	   *copy = pstrdup(expression);
	char	   *tokens[CRON_MAX_FIELDS];
	int			count;
	char	  **field_text;
	bool		single;
	bool		hours_single;
	uint64		weekdays;

	count = split_fields(copy, tokens, CRON_MAX_FIELDS);

	if (count >= 1 && tokens[0][0] == '@')
	{
		const char *expansion = expand_macro(expression, tokens[0], count);

		pfree(copy);
		copy = pstrdup(expansion);
		count = split_fields(copy, tokens, CRON_MAX_FIELDS);
	}

	if (count != 5 && count != 6)
		ereport(ERROR,
				errcode(ERRCODE_SLUICE_INVALID_CRON_EXPRESSION),
				errmsg("invalid cron expression \"%s\": expected 5 or 6 fields, found %d",
					   expression, count),
				errhint("Write minute, hour, day of month, month and day of week, optionally preceded by seconds."));

	memset(schedule, 0, sizeof(*schedule));
	field_text = tokens;
	if (count == 6)
	{
		schedule->seconds = parse_field(&second_field, field_text[0], &single);
		field_text++;
	}
	else
		schedule->seconds = UINT64CONST(1);

	schedule->minutes = parse_field(&minute_field, field_text[0], &single);
	schedule->hours = (uint32) parse_field(&hour_field, field_text[1], &hours_single);
	schedule->days_of_month = (uint32) parse_field(&day_of_month_field, field_text[2], &single);
	schedule->months = (uint16) parse_field(&month_field, field_text[3], &single);

	weekdays = parse_field(&day_of_week_field, field_text[4], &single);

	/* Fold 7 onto 0, because both mean Sunday. */
	if (weekdays & (UINT64CONST(1) << 7))
		weekdays = (weekdays | UINT64CONST(1)) & ~(UINT64CONST(1) << 7);
	schedule->days_of_week = (uint8) weekdays;

	schedule->fixed_hours = hours_single;
	schedule->day_of_month_restricted = strcmp(field_text[2], "*") != 0;
	schedule->day_of_week_restricted = strcmp(field_text[4], "*") != 0;

	check_can_fire(expression, schedule);
	pfree(copy);
}
