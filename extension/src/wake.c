/*
 * wake.c
 *     Wake-ups for waiting workers, decided when a transaction commits.
 *
 * sluice._wake(queue) records that the current transaction made runs ready
 * in a queue. Just before the transaction commits, a transaction callback
 * looks at sluice.waiting_workers once per recorded queue and sends
 * NOTIFY sluice_ready with the queue name when a worker waits for it.
 *
 * Deciding at commit rather than at the call means that a worker which
 * starts waiting while the transaction is still open is woken by its commit.
 * Notifying only when a worker waits matters because NOTIFY takes a lock at
 * commit that serializes every notifying transaction in the database.
 *
 * The queues are kept in backend memory, so a wake-up costs no table write.
 * An earlier version inserted a row per queue and transaction into an
 * unlogged table with a deferred trigger, which cost about a tenth of a
 * single-run enqueue.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(sluice_wake);

/* Queue names (char *) the open transaction requested wake-ups for, in TopTransactionContext. */
static List *requested_queues = NIL;
static bool callback_registered = false;
static SPIPlanPtr waiting_plan = NULL;

static void wake_transaction_callback(XactEvent event, void *arg);
static void notify_waiting_workers(List *queues);

/*
 * sluice._wake(queue text) returns void
 *
 * Requests a sluice_ready notification for queue at commit. Repeated calls
 * for one queue in a transaction add nothing.
 */
Datum
sluice_wake(PG_FUNCTION_ARGS)
{
	char	   *queue = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ListCell   *cell;
	MemoryContext previous;

	if (!callback_registered)
	{
		RegisterXactCallback(wake_transaction_callback, NULL);
		callback_registered = true;
	}

	foreach(cell, requested_queues)
	{
		if (strcmp((const char *) lfirst(cell), queue) == 0)
			PG_RETURN_VOID();
	}

	previous = MemoryContextSwitchTo(TopTransactionContext);
	requested_queues = lappend(requested_queues, pstrdup(queue));
	MemoryContextSwitchTo(previous);
	PG_RETURN_VOID();
}

static void
wake_transaction_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (requested_queues != NIL)
				notify_waiting_workers(requested_queues);
			break;
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * A prepared transaction cannot send notifications. Its runs
			 * are found by the workers' fallback polls instead.
			 */
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* The list lived in TopTransactionContext, which is gone now. */
			requested_queues = NIL;
			break;
		default:
			break;
	}
}

/*
 * Sends NOTIFY sluice_ready for each queue a worker waits on. The check reads
 * the latest committed state, also in a REPEATABLE READ transaction whose own
 * snapshot is older than the worker's wait. A SERIALIZABLE transaction
 * notifies without the check: reading sluice.waiting_workers would take
 * predicate locks and could fail the enqueue with a serialization error
 * because a worker claimed at the same moment.
 */
static void
notify_waiting_workers(List *queues)
{
	ListCell   *cell;

	if (IsolationIsSerializable())
	{
		foreach(cell, queues)
			Async_Notify("sluice_ready", (const char *) lfirst(cell));
		return;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sluice: SPI_connect failed while deciding wake-ups");

	if (waiting_plan == NULL)
	{
		Oid			argument_types[1] = {TEXTOID};
		SPIPlanPtr	plan;

		plan = SPI_prepare("SELECT 1 FROM sluice.waiting_workers w WHERE $1 = ANY (w.queues) LIMIT 1",
						   1, argument_types);
		if (plan == NULL)
			elog(ERROR, "sluice: could not prepare the waiting-worker check: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "sluice: could not keep the waiting-worker check");
		waiting_plan = plan;
	}

	foreach(cell, queues)
	{
		const char *queue = (const char *) lfirst(cell);
		Datum		argument = CStringGetTextDatum(queue);
		int			result;

		result = SPI_execute_snapshot(waiting_plan, &argument, NULL, GetLatestSnapshot(), InvalidSnapshot,
									  true, false, 1);
		if (result != SPI_OK_SELECT)
			elog(ERROR, "sluice: the waiting-worker check failed: %s", SPI_result_code_string(result));
		if (SPI_processed > 0)
			Async_Notify("sluice_ready", queue);
	}

	SPI_finish();
}
