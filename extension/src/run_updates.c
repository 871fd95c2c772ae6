/*
 * run_updates.c
 *     The claim's and the completion's updates of sluice.runs, run on the
 *     history partitions that hold the runs.
 *
 * sluice.runs is partitioned by ranges of run id. With the default retention
 * of seven days and a partition a day it has eight or nine partitions, and
 * the live runs are in the newest one or two. The claim and complete
 * functions run generic plans. In PostgreSQL 15 such a plan of an UPDATE by
 * "id = ANY ($1)" prunes no partition: it looks up every id in every
 * partition's index. With nine partitions, claims and completions of 100
 * runs ran about a fifth slower than with one (bench/RESULTS.md).
 *
 * sluice._start_runs and sluice._finish_runs find the partition of each id
 * from the partition bounds in the relation cache, as tuple routing does.
 * They run the update on each of those partitions alone, with a plan kept
 * per partition.
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(sluice_start_runs);
PG_FUNCTION_INFO_V1(sluice_finish_runs);

/* The updates, each run on one partition. %s stands for the partition's name. */
typedef enum RunUpdate
{
	RUN_UPDATE_START,
	RUN_UPDATE_FINISH,
	RUN_UPDATE_KINDS
} RunUpdate;

static const char *const update_templates[RUN_UPDATE_KINDS] = {
	/* $1 run ids, $2 worker id, $3 start time */
	"UPDATE %s u"
	" SET status = 'running', attempt = u.attempt + 1, started_at = $3, worker_id = $2"
	" WHERE u.id = ANY ($1) AND u.status = 'queued'"
	" RETURNING u.id, u.task, u.attempt, u.input, u.metadata, u.max_attempts",
	/* $1 run ids, $2 their outputs in the same order, $3 finish time */
	"UPDATE %s r"
	" SET status = 'succeeded', output = $2[pg_catalog.array_position($1, r.id)], finished_at = $3"
	" WHERE r.id = ANY ($1) AND r.status = 'running'"
	" RETURNING r.id, r.watched",
};

static const Oid update_argument_types[RUN_UPDATE_KINDS][3] = {
	{INT8ARRAYOID, UUIDOID, TIMESTAMPTZOID},
	{INT8ARRAYOID, JSONBARRAYOID, TIMESTAMPTZOID},
};

/*
 * Plans kept for one partition. The schema and name are checked on every use,
 * because a kept plan is parsed again from its query text after a change to
 * the table, and a dropped partition's oid may come back as another
 * relation's.
 */
typedef struct PartitionPlans
{
	Oid			partition;
	Oid			namespace;
	NameData	name;
	/* Calls of update_runs executing one of the plans, which must not be freed before they return. */
	int			pins;
	SPIPlanPtr	plans[RUN_UPDATE_KINDS];
} PartitionPlans;

/* Live runs are in one or two partitions, and a few more entries cover a rotation. */
#define KEPT_PARTITIONS 4
static PartitionPlans kept[KEPT_PARTITIONS];
static int	next_to_replace = 0;

static Datum update_runs(FunctionCallInfo fcinfo, RunUpdate kind);
static int	partitions_of(ArrayType *run_ids, Oid **partitions);
static PartitionPlans *entry_for(Oid partition);
static SPIPlanPtr plan_for(Oid partition, PartitionPlans *entry, RunUpdate kind);
static int	execute_pinned(PartitionPlans *entry, SPIPlanPtr plan, Datum *arguments);

/*
 * sluice._start_runs(run_ids bigint[], worker_id uuid, started_at timestamptz)
 * returns the started runs: id, task, attempt, input, metadata, max_attempts.
 *
 * Marks the queued runs among run_ids as running their next attempt for
 * worker_id. Runs in another state are left as they are and not returned.
 */
Datum
sluice_start_runs(PG_FUNCTION_ARGS)
{
	return update_runs(fcinfo, RUN_UPDATE_START);
}

/*
 * sluice._finish_runs(run_ids bigint[], outputs jsonb[], finished_at timestamptz)
 * returns the finished runs: id, watched.
 *
 * Marks the running runs among run_ids as succeeded, each with the output at
 * its position. Runs in another state are left as they are and not returned.
 */
Datum
sluice_finish_runs(PG_FUNCTION_ARGS)
{
	return update_runs(fcinfo, RUN_UPDATE_FINISH);
}

static Datum
update_runs(FunctionCallInfo fcinfo, RunUpdate kind)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		arguments[3];
	Oid		   *partitions;
	int			count;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	/* The functions are strict, so no argument is NULL. */
	for (int i = 0; i < 3; i++)
		arguments[i] = PG_GETARG_DATUM(i);
	count = partitions_of(PG_GETARG_ARRAYTYPE_P(0), &partitions);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sluice: SPI_connect failed while updating runs");
	for (int i = 0; i < count; i++)
	{
		PartitionPlans *entry;
		SPIPlanPtr	plan;
		int			result;

		/*
		 * Renaming the partition or moving it to another schema takes an
		 * AccessExclusiveLock, so this lock keeps the name that the kept plan
		 * is parsed from until the transaction ends.
		 */
		LockRelationOid(partitions[i], RowExclusiveLock);
		entry = entry_for(partitions[i]);
		plan = plan_for(partitions[i], entry, kind);
		result = execute_pinned(entry, plan, arguments);
		if (result != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "sluice: updating runs in partition %u failed: %s",
				 partitions[i], SPI_result_code_string(result));
		for (uint64 row = 0; row < SPI_processed; row++)
			tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[row]);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * Sets *partitions to the oids of the partitions of sluice.runs that hold the
 * ids, each once, and returns their number. The lock on sluice.runs
 * is the one an update through it takes, and it keeps a partition from being
 * dropped until the transaction ends.
 */
static int
partitions_of(ArrayType *run_ids, Oid **partitions)
{
	Oid			runs_oid = get_relname_relid("runs", get_namespace_oid("sluice", false));
	Relation	runs;
	PartitionKey key;
	PartitionDesc partdesc;
	Datum	   *ids;
	bool	   *id_nulls;
	int			id_count;
	int			count = 0;

	if (!OidIsValid(runs_oid))
		elog(ERROR, "sluice: the table sluice.runs does not exist");
	runs = table_open(runs_oid, RowExclusiveLock);
	key = RelationGetPartitionKey(runs);
	partdesc = RelationGetPartitionDesc(runs, true);
	if (key == NULL || key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
		key->parttypid[0] != INT8OID)
		elog(ERROR, "sluice: sluice.runs is not partitioned by ranges of its bigint id");

	deconstruct_array(run_ids, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &ids, &id_nulls, &id_count);
	*partitions = palloc(sizeof(Oid) * Max(id_count, 1));
	for (int i = 0; i < id_count && partdesc->nparts > 0; i++)
	{
		PartitionBoundInfo bounds = partdesc->boundinfo;
		bool		equal;
		int			offset;
		int			index;
		Oid			partition;
		bool		seen = false;

		if (id_nulls[i])
			continue;
		/* The bound at offset is at or below the id, so the one after it closes the id's range. */
		offset = partition_range_datum_bsearch(key->partsupfunc, key->partcollation, bounds, 1,
											   &ids[i], &equal);
		index = bounds->indexes[offset + 1];
		if (index < 0)
			index = bounds->default_index;
		if (index < 0)
			continue;
		partition = partdesc->oids[index];
		for (int j = 0; j < count && !seen; j++)
			seen = (*partitions)[j] == partition;
		if (!seen)
			(*partitions)[count++] = partition;
	}
	table_close(runs, NoLock);
	return count;
}

/*
 * Returns the entry of partition's kept plans. Without one, it takes over the
 * next unpinned entry and frees its plans, or returns NULL when every entry is
 * pinned by a call that is still executing.
 */
static PartitionPlans *
entry_for(Oid partition)
{
	char	   *name = get_rel_name(partition);
	Oid			namespace = get_rel_namespace(partition);
	PartitionPlans *entry = NULL;

	if (name == NULL)
		elog(ERROR, "sluice: partition %u of sluice.runs does not exist", partition);
	for (int i = 0; i < KEPT_PARTITIONS; i++)
	{
		if (kept[i].partition == partition && kept[i].namespace == namespace &&
			strcmp(NameStr(kept[i].name), name) == 0)
			return &kept[i];
	}
	for (int i = 0; i < KEPT_PARTITIONS && entry == NULL; i++)
	{
		PartitionPlans *candidate = &kept[(next_to_replace + i) % KEPT_PARTITIONS];

		if (candidate->pins == 0)
			entry = candidate;
	}
	if (entry == NULL)
		return NULL;

	next_to_replace = (entry - kept + 1) % KEPT_PARTITIONS;
	for (int k = 0; k < RUN_UPDATE_KINDS; k++)
	{
		if (entry->plans[k] != NULL)
			SPI_freeplan(entry->plans[k]);
		entry->plans[k] = NULL;
	}
	entry->partition = partition;
	entry->namespace = namespace;
	namestrcpy(&entry->name, name);
	return entry;
}

/*
 * Returns the plan of update kind for partition: the one kept in entry,
 * prepared on first use, or without an entry one that SPI_finish frees.
 */
static SPIPlanPtr
plan_for(Oid partition, PartitionPlans *entry, RunUpdate kind)
{
	SPIPlanPtr	plan;
	char	   *query;

	if (entry != NULL && entry->plans[kind] != NULL)
		return entry->plans[kind];

	query = psprintf(update_templates[kind],
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(partition)),
												get_rel_name(partition)));
	/* Every statement reads by key, so one generic plan serves all arguments. */
	plan = SPI_prepare_cursor(query, 3, (Oid *) update_argument_types[kind], CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "sluice: could not prepare \"%s\": %s", query, SPI_result_code_string(SPI_result));
	if (entry == NULL)
		return plan;
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "sluice: could not keep the plan of \"%s\"", query);
	entry->plans[kind] = plan;
	return plan;
}

/*
 * Executes plan with entry pinned. A trigger on the partition may call these
 * functions again, and the nested call must not free the plan while it runs.
 */
static int
execute_pinned(PartitionPlans *entry, SPIPlanPtr plan, Datum *arguments)
{
	volatile int result;

	if (entry == NULL)
		return SPI_execute_plan(plan, arguments, NULL, false, 0);

	entry->pins++;
	PG_TRY();
	{
		result = SPI_execute_plan(plan, arguments, NULL, false, 0);
	}
	PG_CATCH();
	{
		entry->pins--;
		PG_RE_THROW();
	}
	PG_END_TRY();
	entry->pins--;
	return result;
}
