/*
 * claim_wait.c
 *     A claim that waits inside the server until runs become ready.
 *
 * A worker whose claim found nothing waits for NOTIFY sluice_ready and then
 * claims again. That wake-up crosses the listening backend, the client and
 * the network before the claim even starts. sluice.claim_or_wait(worker,
 * max_runs, timeout) waits in the backend that will claim instead: the
 * session listens on sluice_ready, so an enqueue that notifies sets this
 * backend's latch at commit, and the claim runs at once in the same call.
 *
 * Each attempt runs sluice.claim in a subtransaction. When it claims nothing
 * and wrote nothing, the subtransaction is rolled back, which releases every
 * lock the claim took (the worker's advisory lock, the relation locks on the
 * queue tables). So maintenance such as sluice.shed_dead_rows does not wait
 * for a waiting call. The call keeps only its statement's snapshot, for at
 * most the timeout.
 *
 * A call waits only when the wake-up is sure to come:
 *   - the session listens on sluice_ready from an earlier transaction. A
 *     first call runs LISTEN and returns without waiting, because a LISTEN
 *     takes effect at commit;
 *   - the worker's row in sluice.waiting_workers was committed by an earlier
 *     claim. Enqueues look for that row when they commit, and do not see one
 *     this call would insert;
 *   - the attempt wrote nothing. A claim that moved gated runs to
 *     sluice.held, or inserted the waiting row, keeps its work and returns,
 *     rather than hold those row locks through the wait;
 *   - the call is not inside a transaction block, whose earlier statements'
 *     locks would be held through the wait, and its transaction wrote nothing
 *     before it (a PL/pgSQL loop's earlier claims). NOTE: relation locks that
 *     earlier reads of a function's transaction took are still held.
 * Otherwise the call returns what the attempt claimed, possibly nothing, and
 * the caller calls again.
 *
 * An attempt after a wait runs in the transaction that began before it, and
 * sluice.now() is the transaction's start plus sluice.clock_offset. So such
 * an attempt first moves the offset forward by the time since the
 * transaction began, in its subtransaction, and the run's start, deadline
 * and rate-limit refills read the time of the claim.
 *
 * After a wake-up, an attempt first looks for an unlocked ready run of the
 * worker's queues and tasks (may_have_work) and, finding none, goes back to
 * waiting without running the claim.
 *
 * The latch is reset before each attempt, so a notification that arrives
 * after the attempt's snapshot ends the wait at once. Any notification in the
 * database sets the latch of a listening backend, so a call may wake for
 * other channels' traffic and attempt again. It still returns only with runs
 * or at the timeout.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define ERRCODE_SLUICE_INVALID_OPTION MAKE_SQLSTATE('S', 'L', '0', '0', '4')

/* The maximum timeout of a call, since it keeps its snapshot while it waits. */
#define CLAIM_WAIT_MAX_USECS (60 * USECS_PER_SEC)

PG_FUNCTION_INFO_V1(sluice_claim_or_wait);

/* What one attempt left the call to do. */
typedef enum ClaimAttempt
{
	ATTEMPT_RETURN,				/* return: runs were claimed, or waiting is not safe */
	ATTEMPT_WAIT,				/* nothing claimed or written; a wake-up will come */
	ATTEMPT_LISTEN				/* nothing claimed; LISTEN first, then return */
} ClaimAttempt;

static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr ready_plan = NULL;
static SPIPlanPtr clock_plan = NULL;
static SPIPlanPtr wait_check_plan = NULL;

static ClaimAttempt attempt_claim(Datum *arguments, char *nulls, ReturnSetInfo *rsinfo, bool after_wait);
static void move_clock_to_now(void);
static uint64 run_claim(Datum *arguments, char *nulls, ReturnSetInfo *rsinfo);
static bool may_have_work(Datum worker_id);
static ClaimAttempt wait_check(Datum worker_id, bool wrote);
static SPIPlanPtr keep_plan(const char *query, int count, Oid *types);
static int64 timeout_microseconds(Interval *timeout);

/*
 * sluice.claim_or_wait(worker_id uuid, max_runs integer, timeout interval)
 * returns the rows of sluice.claim.
 */
Datum
sluice_claim_or_wait(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		arguments[2];
	char		nulls[2];
	TimestampTz end;
	bool		wrote_before;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				errcode(ERRCODE_SLUICE_INVALID_OPTION),
				errmsg("invalid timeout: NULL"),
				errdetail("Allowed values are 00:00:00 to 00:01:00."));
	end = GetCurrentTimestamp() + timeout_microseconds(PG_GETARG_INTERVAL_P(2));

	arguments[0] = PG_GETARG_DATUM(0);
	nulls[0] = PG_ARGISNULL(0) ? 'n' : ' ';
	arguments[1] = PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';

	/*
	 * A transaction that wrote before this call, such as an earlier call of a
	 * PL/pgSQL loop that claimed runs, would hold those rows through a wait.
	 * Its earlier claim may also have moved sluice.clock_offset, which a
	 * second move would count twice.
	 */
	wrote_before = GetTopTransactionIdIfAny() != InvalidTransactionId;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	for (bool after_wait = false;; after_wait = true)
	{
		ClaimAttempt next;
		TimestampTz now;

		ResetLatch(MyLatch);
		next = attempt_claim(arguments, nulls, rsinfo, after_wait);
		/* In a transaction block or after earlier writes, their locks would be held through a wait. */
		if (next == ATTEMPT_WAIT && (IsTransactionBlock() || wrote_before))
			break;
		if (next == ATTEMPT_LISTEN)
		{
			Async_Listen("sluice_ready");
			break;
		}
		if (next == ATTEMPT_RETURN)
			break;
		now = GetCurrentTimestamp();
		if (now >= end)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TimestampDifferenceMilliseconds(now, end) + 1, PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
	return (Datum) 0;
}

/*
 * Runs sluice.claim once in a subtransaction and adds its rows to the result.
 * The subtransaction is kept when it claimed or wrote something and rolled
 * back when the call may wait, so that the wait holds none of its locks.
 */
static ClaimAttempt
attempt_claim(Datum *arguments, char *nulls, ReturnSetInfo *rsinfo, bool after_wait)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	volatile ClaimAttempt next = ATTEMPT_RETURN;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);

	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "sluice: SPI_connect failed in claim_or_wait");
		if (after_wait && !may_have_work(arguments[0]))
		{
			/* Woken for another queue's runs, or beaten to these by another claim. */
			next = ATTEMPT_WAIT;
		}
		else
		{
			uint64		claimed;
			bool		wrote;

			if (after_wait)
				move_clock_to_now();
			claimed = run_claim(arguments, nulls, rsinfo);
			/* The subtransaction's own id is assigned only when it wrote a row. */
			wrote = GetCurrentTransactionIdIfAny() != InvalidTransactionId;
			if (claimed == 0)
				next = wait_check(arguments[0], wrote);
		}
		SPI_finish();

		if (next == ATTEMPT_WAIT)
			RollbackAndReleaseCurrentSubTransaction();
		else
			ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(caller_context);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
		ReThrowError(error);
	}
	PG_END_TRY();

	return next;
}

/*
 * Moves sluice.clock_offset forward, for the rest of the subtransaction, by
 * the time since the transaction began, so that sluice.now() reads the time
 * of this attempt.
 */
static void
move_clock_to_now(void)
{
	int			result;

	if (clock_plan == NULL)
		clock_plan = keep_plan(
			"SELECT pg_catalog.set_config('sluice.clock_offset', "
			"(coalesce(nullif(pg_catalog.current_setting('sluice.clock_offset', true), ''), '0')::interval"
			" + (pg_catalog.clock_timestamp() - pg_catalog.now()))::text, true)",
			0, NULL);
	result = SPI_execute_plan(clock_plan, NULL, NULL, false, 1);
	if (result != SPI_OK_SELECT)
		elog(ERROR, "sluice: moving the claim's clock failed: %s", SPI_result_code_string(result));
}

/* Runs sluice.claim, adds its rows to the call's result and returns their number. */
static uint64
run_claim(Datum *arguments, char *nulls, ReturnSetInfo *rsinfo)
{
	int			result;

	if (claim_plan == NULL)
	{
		Oid			types[2] = {UUIDOID, INT4OID};

		claim_plan = keep_plan("SELECT * FROM sluice.claim($1, $2)", 2, types);
	}
	result = SPI_execute_plan(claim_plan, arguments, nulls, false, 0);
	if (result != SPI_OK_SELECT)
		elog(ERROR, "sluice: the claim in claim_or_wait failed: %s", SPI_result_code_string(result));
	for (uint64 i = 0; i < SPI_processed; i++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
	return SPI_processed;
}

/*
 * Returns whether a ready run of the worker's queues and tasks is not locked
 * by another transaction. It costs a few index probes, where the claim would
 * take its locks and read the worker's slots. Every waiting backend of the
 * database wakes for each notification, and of the backends that wait on one
 * queue, all but the fastest find the new runs locked.
 */
static bool
may_have_work(Datum worker_id)
{
	int			result;

	if (ready_plan == NULL)
	{
		Oid			types[1] = {UUIDOID};

		ready_plan = keep_plan(
			"SELECT 1 FROM sluice.workers w"
			" CROSS JOIN LATERAL unnest(w.queues) AS q(queue)"
			" CROSS JOIN LATERAL unnest(w.tasks) AS k(task)"
			" CROSS JOIN LATERAL (SELECT r.run_id FROM sluice.ready r"
			"                     WHERE r.queue = q.queue AND r.task = k.task"
			"                     LIMIT 1 FOR UPDATE SKIP LOCKED) r"
			" WHERE w.id = $1 LIMIT 1",
			1, types);
	}
	result = SPI_execute_plan(ready_plan, &worker_id, NULL, false, 1);
	if (result != SPI_OK_SELECT)
		elog(ERROR, "sluice: the ready check in claim_or_wait failed: %s", SPI_result_code_string(result));
	return SPI_processed > 0;
}

/*
 * Decides what follows an attempt that claimed nothing. The call waits when
 * a wake-up is sure to come and the attempt wrote nothing: the session
 * listens on sluice_ready and enqueues can see the worker's waiting row.
 */
static ClaimAttempt
wait_check(Datum worker_id, bool wrote)
{
	int			result;
	bool		is_null;
	bool		listening;
	bool		waiting;

	if (wait_check_plan == NULL)
	{
		Oid			types[1] = {UUIDOID};

		wait_check_plan = keep_plan(
			"SELECT 'sluice_ready' = ANY (ARRAY(SELECT pg_catalog.pg_listening_channels())), "
			"       EXISTS (SELECT FROM sluice.waiting_workers w WHERE w.worker_id = $1)",
			1, types);
	}
	result = SPI_execute_plan(wait_check_plan, &worker_id, NULL, true, 1);
	if (result != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "sluice: the wait check in claim_or_wait failed: %s", SPI_result_code_string(result));
	listening = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null));
	waiting = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &is_null));
	if (!listening)
		return ATTEMPT_LISTEN;
	return waiting && !wrote ? ATTEMPT_WAIT : ATTEMPT_RETURN;
}

static SPIPlanPtr
keep_plan(const char *query, int count, Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare(query, count, types);

	if (plan == NULL)
		elog(ERROR, "sluice: could not prepare \"%s\": %s", query, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "sluice: could not keep the plan of \"%s\"", query);
	return plan;
}

/* Returns the timeout in microseconds, or raises SL004 outside 0 to 1 minute. */
static int64
timeout_microseconds(Interval *timeout)
{
	int64		total = -1;

	/* Anything with months, or days and time beyond two days, is far out of range. */
	if (timeout->month == 0 && timeout->day >= -1 && timeout->day <= 1 &&
		timeout->time >= -2 * USECS_PER_DAY && timeout->time <= 2 * USECS_PER_DAY)
		total = timeout->time + (int64) timeout->day * USECS_PER_DAY;
	if (total < 0 || total > CLAIM_WAIT_MAX_USECS)
		ereport(ERROR,
				errcode(ERRCODE_SLUICE_INVALID_OPTION),
				errmsg("invalid timeout: %s",
					   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(timeout)))),
				errdetail("Allowed values are 00:00:00 to 00:01:00."));
	return total;
}
