/*
 * run_updates.c
 *     The claim's and the completion's updates of sluice.runs, pruned to the
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
 * sluice._start_runs and sluice._finish_runs group the ids by partition,
 * using the partition bounds in the relation cache as tuple routing does.
 * For each group they run the update on sluice.runs with the group's lowest
 * and highest id as a range, which the executor's pruning turns into that
 * one partition. The update still goes through sluice.runs, so privileges,
 * row-level security and statement triggers are those of sluice.runs.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tupconvert.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(sluice_start_runs);
PG_FUNCTION_INFO_V1(sluice_finish_runs);

/* The two updates. $4 and $5 are the lowest and highest id of one IdRange. */
typedef enum RunUpdate
{
	RUN_UPDATE_START,
	RUN_UPDATE_FINISH,
	RUN_UPDATE_KINDS
} RunUpdate;

static const char *const update_queries[RUN_UPDATE_KINDS] = {
	/* $1 run ids, $2 worker id, $3 start time */
	"UPDATE sluice.runs u"
	" SET status = 'running', attempt = u.attempt + 1, started_at = $3, worker_id = $2"
	" WHERE u.id = ANY ($1) AND u.id >= $4 AND u.id <= $5 AND u.status = 'queued'"
	" RETURNING u.id, u.task, u.attempt, u.input, u.metadata, u.max_attempts",
	/* $1 run ids, $2 their outputs in the same order, $3 finish time */
	"UPDATE sluice.runs r"
	" SET status = 'succeeded', output = $2[pg_catalog.array_position($1, r.id)], finished_at = $3"
	" WHERE r.id = ANY ($1) AND r.id >= $4 AND r.id <= $5 AND r.status = 'running'"
	" RETURNING r.id, r.watched",
};

static const Oid update_argument_types[RUN_UPDATE_KINDS][5] = {
	{INT8ARRAYOID, UUIDOID, TIMESTAMPTZOID, INT8OID, INT8OID},
	{INT8ARRAYOID, JSONBARRAYOID, TIMESTAMPTZOID, INT8OID, INT8OID},
};

static SPIPlanPtr update_plans[RUN_UPDATE_KINDS];

/*
 * The lowest and highest of the ids in a call that lie between two adjacent
 * partition bounds. Such ids are in one partition, so the range prunes to it.
 */
typedef struct IdRange
{
	int			bound;			/* index of the upper bound in the bound info */
	int64		lowest;
	int64		highest;
} IdRange;

static Datum update_runs(FunctionCallInfo fcinfo, RunUpdate kind);
static int	ranges_by_partition(ArrayType *run_ids, IdRange **ranges);
static void check_runs_privilege(const RangeVar *relation, Oid relid, Oid old_relid,
								 void *argument);
static SPIPlanPtr plan_for(RunUpdate kind);

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
	Datum		arguments[5];
	IdRange    *ranges;
	int			count;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	/* The functions are strict, so no argument is NULL. */
	for (int i = 0; i < 3; i++)
		arguments[i] = PG_GETARG_DATUM(i);
	count = ranges_by_partition(PG_GETARG_ARRAYTYPE_P(0), &ranges);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sluice: SPI_connect failed while updating runs");
	for (int i = 0; i < count; i++)
	{
		int			result;
		TupleConversionMap *map;

		arguments[3] = Int64GetDatum(ranges[i].lowest);
		arguments[4] = Int64GetDatum(ranges[i].highest);
		result = SPI_execute_plan(plan_for(kind), arguments, NULL, false, 0);
		if (result != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "sluice: updating runs %lld to %lld failed: %s",
				 (long long) ranges[i].lowest, (long long) ranges[i].highest,
				 SPI_result_code_string(result));
		/*
		 * The plan is analyzed again after a change to sluice.runs, and then
		 * returns the columns' new types. The tuplestore must only get tuples
		 * of the declared result type, which its readers assume.
		 */
		map = convert_tuples_by_position(SPI_tuptable->tupdesc, rsinfo->setDesc,
										 gettext_noop("updated rows of sluice.runs do not match the function result type"));
		for (uint64 row = 0; row < SPI_processed; row++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[row];

			if (map != NULL)
				tuple = execute_attr_map_tuple(tuple, map);
			tuplestore_puttuple(rsinfo->setResult, tuple);
		}
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * Sets *ranges to the id ranges, one for each partition of sluice.runs that
 * contains some of the ids, and returns their number. Ids in the default
 * partition get one range for each gap between the other partitions, so
 * that each range prunes to the default partition alone. Ids in no
 * partition are left out, since they name no run.
 */
static int
ranges_by_partition(ArrayType *run_ids, IdRange **ranges)
{
	Oid			runs_oid;
	Relation	runs;
	PartitionKey key;
	PartitionDesc partdesc;
	Datum	   *ids;
	bool	   *id_nulls;
	int			id_count;
	int			count = 0;

	/*
	 * The lock an update of sluice.runs takes. It keeps the partitions as they
	 * are until commit.
	 *
	 * NOTE: ATTACH PARTITION takes only SHARE UPDATE EXCLUSIVE on sluice.runs,
	 * so a partition attached during the call is not in this descriptor, and
	 * the ids of its rows are left out.
	 */
	runs_oid = RangeVarGetRelidExtended(makeRangeVar("sluice", "runs", -1), RowExclusiveLock, 0,
										check_runs_privilege, NULL);
	runs = table_open(runs_oid, NoLock);
	key = RelationGetPartitionKey(runs);
	if (key == NULL || key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
		key->parttypid[0] != INT8OID)
		elog(ERROR, "sluice: sluice.runs is not partitioned by ranges of its bigint id");
	partdesc = RelationGetPartitionDesc(runs, true);

	deconstruct_array(run_ids, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &ids, &id_nulls, &id_count);
	*ranges = palloc(sizeof(IdRange) * Max(id_count, 1));
	for (int i = 0; i < id_count && partdesc->nparts > 0; i++)
	{
		PartitionBoundInfo bounds = partdesc->boundinfo;
		int64		id;
		bool		equal;
		int			offset;
		IdRange    *range = NULL;

		if (id_nulls[i])
			continue;
		id = DatumGetInt64(ids[i]);
		/* The bound at offset is at or below the id, so the one after it closes the id's range. */
		offset = partition_range_datum_bsearch(key->partsupfunc, key->partcollation, bounds, 1,
											   &ids[i], &equal);
		if (bounds->indexes[offset + 1] < 0 && bounds->default_index < 0)
			continue;
		for (int j = 0; j < count && range == NULL; j++)
		{
			if ((*ranges)[j].bound == offset + 1)
				range = &(*ranges)[j];
		}
		if (range == NULL)
		{
			range = &(*ranges)[count++];
			range->bound = offset + 1;
			range->lowest = id;
			range->highest = id;
		}
		range->lowest = Min(range->lowest, id);
		range->highest = Max(range->highest, id);
	}
	table_close(runs, NoLock);
	return count;
}

/*
 * Rejects a role that has no UPDATE privilege on sluice.runs before the lock
 * is taken, as LOCK TABLE does. Without it any role that may call the
 * function could hold a lock on sluice.runs, and the update's own privilege
 * check runs only when some id is in a partition.
 */
static void
check_runs_privilege(const RangeVar *relation, Oid relid, Oid old_relid, void *argument)
{
	bool		is_missing = false;

	if (!OidIsValid(relid))
		return;
	if (pg_class_aclcheck_ext(relid, GetUserId(), ACL_UPDATE, &is_missing) == ACLCHECK_OK || is_missing)
		return;
	/* A role with UPDATE on some columns only passes, and the update checks each column it sets. */
	if (pg_attribute_aclcheck_all(relid, GetUserId(), ACL_UPDATE, ACLMASK_ANY) == ACLCHECK_OK)
		return;
	aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, relation->relname);
}

/* Returns the kept plan of update kind, preparing it on first use in the session. */
static SPIPlanPtr
plan_for(RunUpdate kind)
{
	SPIPlanPtr	plan;

	if (update_plans[kind] != NULL)
		return update_plans[kind];
	/*
	 * A generic plan, so that the range prunes at executor start and no call
	 * pays for planning. Every statement reads by key.
	 */
	plan = SPI_prepare_cursor(update_queries[kind], 5, (Oid *) update_argument_types[kind],
							  CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "sluice: could not prepare \"%s\": %s", update_queries[kind],
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "sluice: could not keep the plan of \"%s\"", update_queries[kind]);
	update_plans[kind] = plan;
	return plan;
}
