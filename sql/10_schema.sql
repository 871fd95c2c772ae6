-- Sluice: a durable task queue inside PostgreSQL.
--
-- Vocabulary
--   task    a named kind of work with its options (queue, retries, timeouts).
--           Rows of sluice.tasks; workers define them when they start.
--   run     one request to execute a task with an input. Rows of sluice.runs,
--           the history, kept until retention drops their partition.
--   attempt one execution of a run by a worker. Attempts count from 1; the
--           run's attempt column is the number of the latest one.
--   worker  one worker process incarnation: a new id each time a process
--           starts, even under the same name.
--
-- Tables
--   sluice.tasks     task definitions.
--   sluice.runs      run history, partitioned by ranges of run id.
--   sluice.ready     runs that may start now: small, narrow, hot. Claiming
--                    deletes the row in the transaction that records the
--                    assignment.
--   sluice.delayed   runs waiting for a time: a delayed start or a retry.
--   sluice.leases    runs being executed: owner incarnation, attempt and
--                    execution deadline. A lease row exists exactly while
--                    the run is running, and deleting it is how every
--                    actor (worker, reaper, cancel) takes the right to move
--                    the run out of running.
--   sluice.workers   worker incarnations and their heartbeats.
--   sluice.held      queued runs that a concurrency key or a rate limit
--                    holds back (see "Flow control" below).
--
-- States of a run
--   scheduled -> queued -> running -> succeeded | failed | cancelled
--   scheduled: waits in sluice.delayed for its time (delay or retry backoff).
--   queued:    waits in sluice.ready for a worker.
--   running:   holds a lease. A failed attempt goes back to scheduled or
--              queued while attempts remain; otherwise the run fails.
--   Any non-final run can be cancelled. skipped is reserved for workflow
--   steps a condition skips, and no function of this version sets it.
--
-- Entry points
--   Applications: define_task, enqueue, enqueue_many, cancel, run_result.
--   Workers:      register_worker, claim, complete, fail, heartbeat,
--                 stop_worker.
--   Coordinator:  tick (promote due runs, expire leases, time out queued
--                 runs), next_due_at, maintain (partitions, retention).
--
-- Lock order
--   Every function that moves a run first locks or deletes its row in a
--   queue table (ready, delayed, leases) and only then updates sluice.runs.
--   State changes on sluice.runs are compare-and-set on the status and the
--   attempt, so an actor that lost a race changes nothing.
--
-- Planner settings
--   The functions on the hot path (claim, complete, fail, heartbeat, cancel,
--   enqueue_many and the coordinator's) run with SET jit = off. Their
--   statements touch a few rows by key, but a join with sluice.runs is
--   estimated from the size of the whole history. With a million runs kept,
--   the estimate passed jit_above_cost and every claim of 100 runs spent about
--   200 ms compiling a plan that then ran in 1 ms.
--   claim, complete, fail and heartbeat also set plan_cache_mode to
--   force_generic_plan. PL/pgSQL plans each statement again on every call
--   while the generic plan's estimate looks worse than the custom plans',
--   and for these statements it did on every call: planning was a third of
--   the claim's time. Every statement in them reads by key or in index order,
--   so one plan serves all arguments.
--
-- Notifications carry queue names or run ids only, never payloads:
--   sluice_ready     payload: queue name; runs became ready in that queue.
--   sluice_timer     payload: empty; a timer was added, the coordinator
--                    should recompute when it wakes up.
--   sluice_cancel    payload: run id; a running run was cancelled.
--   sluice_finished  payload: run id; a watched run reached a final state.

CREATE TYPE sluice.run_status AS ENUM (
    'scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'
);

COMMENT ON TYPE sluice.run_status IS
    'State of a run: scheduled, queued and running are live; succeeded, failed, cancelled and skipped are final.';

CREATE TABLE sluice.tasks (
    name              text PRIMARY KEY,
    queue             text NOT NULL DEFAULT 'default',
    max_attempts      integer NOT NULL DEFAULT 3,
    backoff_base      interval NOT NULL DEFAULT '1 second',
    backoff_factor    double precision NOT NULL DEFAULT 2,
    backoff_max       interval NOT NULL DEFAULT '10 minutes',
    backoff_jitter    double precision NOT NULL DEFAULT 0.1,
    execution_timeout interval NOT NULL DEFAULT '5 minutes',
    schedule_timeout  interval,
    priority          smallint NOT NULL DEFAULT 0,
    slot_cost         integer NOT NULL DEFAULT 1,
    concurrency       jsonb NOT NULL DEFAULT '[]',
    rate_limits       jsonb NOT NULL DEFAULT '[]',
    affinity          jsonb NOT NULL DEFAULT '[]',
    gated             boolean GENERATED ALWAYS AS (concurrency <> '[]' OR rate_limits <> '[]') STORED,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE sluice.tasks IS
    'Task definitions: queue, retry policy, timeouts, default priority, slot cost, concurrency rules, '
    'rate limits and worker affinity.';

-- Run ids come from one sequence. History is partitioned by ranges of id so
-- that a lookup by id touches one partition, and sluice.maintain() starts a
-- new partition every partition_interval by creating it and moving the
-- sequence to its first id. Old partitions are dropped whole, never deleted
-- row by row.
CREATE SEQUENCE sluice.run_id_seq AS bigint;

CREATE TABLE sluice.runs (
    id              bigint NOT NULL DEFAULT nextval('sluice.run_id_seq'),
    task            text NOT NULL,
    queue           text NOT NULL,
    status          sluice.run_status NOT NULL,
    priority        smallint NOT NULL,
    input           jsonb NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}',
    output          jsonb,
    error           jsonb,
    attempt         integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL,
    idempotency_key text,
    watched         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    run_at          timestamptz NOT NULL,
    started_at      timestamptz,
    finished_at     timestamptz,
    worker_id       uuid,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);

COMMENT ON TABLE sluice.runs IS
    'Run history: one row per run with its input, state, latest attempt, output or error.';

CREATE TABLE sluice.run_partitions (
    number     integer PRIMARY KEY,
    first_id   bigint NOT NULL,
    end_id     bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    closed_at  timestamptz
);

COMMENT ON TABLE sluice.run_partitions IS
    'Partitions of sluice.runs: the id range of each, when it started taking runs and when it stopped.';

-- Failed attempts, for the run timeline. Successful attempts leave no row
-- here, so the hot path does not pay for it.
CREATE TABLE sluice.attempt_errors (
    run_id     bigint NOT NULL,
    attempt    integer NOT NULL,
    error      jsonb NOT NULL,
    failed_at  timestamptz NOT NULL,
    PRIMARY KEY (run_id, attempt)
);

COMMENT ON TABLE sluice.attempt_errors IS 'The error of every failed attempt, by run and attempt.';

CREATE TABLE sluice.idempotency_keys (
    task       text NOT NULL,
    key        text NOT NULL,
    run_id     bigint NOT NULL,
    PRIMARY KEY (task, key)
);

COMMENT ON TABLE sluice.idempotency_keys IS
    'Idempotency keys of enqueued runs; the primary key makes a duplicate enqueue return the first run.';

-- The hot tables are small and churn constantly, so autovacuum visits them
-- often and HOT updates get room on each page.
-- A run's position in sluice.ready is the order in which it became ready,
-- so a retried run or one a concurrency key held back queues behind the runs
-- that became ready before it, whatever its id.
CREATE SEQUENCE sluice.ready_position_seq AS bigint;

-- sluice.ready and sluice.leases each have two partitions, generations 0 and
-- 1, so that their dead rows can be dropped with TRUNCATE when a long
-- transaction keeps vacuum from removing them (sluice.shed_dead_rows). Bit 32
-- of a ready row's position picks its generation: moving the position
-- sequence to the next block of 2^32 sends new rows to the other generation
-- without a lookup on the enqueue path. A lease takes the generation of the
-- ready row it was claimed from. A unique index on a partitioned table must
-- contain the partition key, so each partition has its own primary key. No
-- code path inserts a run into either table while the run is already there.
CREATE TABLE sluice.ready (
    run_id            bigint NOT NULL,
    queue             text NOT NULL,
    task              text NOT NULL,
    priority          smallint NOT NULL,
    position          bigint NOT NULL DEFAULT nextval('sluice.ready_position_seq'),
    ready_at          timestamptz NOT NULL,
    schedule_deadline timestamptz,
    gated             boolean NOT NULL DEFAULT false
) PARTITION BY LIST (((position >> 32) & 1));

-- The tables of live runs turn vacuum's truncation off (vacuum_truncate).
-- To cut the empty pages off a table's end, VACUUM needs an ACCESS EXCLUSIVE
-- lock, which every claim, completion and enqueue conflicts with. In keyed
-- drains of the benchmark one vacuum of leases_0 spent 5 s retrying for it,
-- and claims stalled each time it got it. The empty pages are reused
-- instead. VACUUM (TRUNCATE) returns them by hand, and shed_dead_rows
-- truncates a whole generation.
CREATE TABLE sluice.ready_0 PARTITION OF sluice.ready (PRIMARY KEY (run_id)) FOR VALUES IN (0)
    WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
          autovacuum_vacuum_cost_delay = 0, vacuum_truncate = false);
CREATE TABLE sluice.ready_1 PARTITION OF sluice.ready (PRIMARY KEY (run_id)) FOR VALUES IN (1)
    WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
          autovacuum_vacuum_cost_delay = 0, vacuum_truncate = false);

-- Workers often execute some of a queue's tasks only, so the claim index
-- groups each task's runs: a claim never reads past another task's backlog.
CREATE INDEX ready_claim_idx ON sluice.ready (queue, task, priority DESC, position);
CREATE INDEX ready_deadline_idx ON sluice.ready (schedule_deadline) WHERE schedule_deadline IS NOT NULL;

COMMENT ON TABLE sluice.ready IS 'Runs that may start now, in claim order per queue.';

CREATE TABLE sluice.delayed (
    run_id   bigint PRIMARY KEY,
    run_at   timestamptz NOT NULL,
    queue    text NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_cost_delay = 0, vacuum_truncate = false);

CREATE INDEX delayed_run_at_idx ON sluice.delayed (run_at);

COMMENT ON TABLE sluice.delayed IS 'Runs waiting for a time: a delayed first start or a retry backoff.';

CREATE TABLE sluice.leases (
    run_id     bigint NOT NULL,
    worker_id  uuid NOT NULL,
    attempt    integer NOT NULL,
    started_at timestamptz NOT NULL,
    deadline   timestamptz NOT NULL,
    slot_cost  integer NOT NULL DEFAULT 1,
    gated      boolean NOT NULL DEFAULT false,
    generation smallint NOT NULL
) PARTITION BY LIST (generation);

CREATE TABLE sluice.leases_0 PARTITION OF sluice.leases (PRIMARY KEY (run_id)) FOR VALUES IN (0)
    WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
          autovacuum_vacuum_cost_delay = 0, vacuum_truncate = false);
CREATE TABLE sluice.leases_1 PARTITION OF sluice.leases (PRIMARY KEY (run_id)) FOR VALUES IN (1)
    WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
          autovacuum_vacuum_cost_delay = 0, vacuum_truncate = false);

CREATE INDEX leases_worker_idx ON sluice.leases (worker_id);

COMMENT ON TABLE sluice.leases IS
    'Running runs: the worker incarnation that owns each, the attempt number and the execution deadline.';

CREATE TABLE sluice.workers (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text NOT NULL,
    hostname       text,
    pid            integer,
    slots          integer NOT NULL,
    queues         text[] NOT NULL,
    tasks          text[] NOT NULL,
    labels         jsonb NOT NULL DEFAULT '{}',
    lease_timeout  interval NOT NULL,
    started_at     timestamptz NOT NULL,
    heartbeat_at   timestamptz NOT NULL,
    stopped_at     timestamptz,
    stop_reason    text
);

CREATE INDEX workers_name_idx ON sluice.workers (name, started_at DESC);

COMMENT ON TABLE sluice.workers IS
    'Worker incarnations: one row per process start, with its slots, tasks, labels and last heartbeat.';

-- Flow control. A task with concurrency rules or rate limits is gated: at
-- enqueue its keys and units are computed into sluice.run_gates, and a claim
-- starts the run only when every gate admits it. A run a gate rejects moves
-- from sluice.ready to sluice.held, out of the claim path, until that gate
-- opens: a completion frees a concurrency slot, or the coordinator sees that
-- a rate limit bucket has refilled.
--
-- Whether a run is gated is decided once, at enqueue, and travels with the
-- run: the gated column of its ready row, then of its lease. A completion,
-- failure, cancel, worker stop or expiry releases gates by the lease's flag,
-- not by the task's current definition, so that redefining a task without
-- its rules while its runs hold slots cannot leave those slots taken.

CREATE TABLE sluice.run_gates (
    run_id    bigint NOT NULL,
    position  smallint NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('concurrency', 'rate')),
    gate_key  text NOT NULL,
    units     integer NOT NULL DEFAULT 1,
    PRIMARY KEY (run_id, position)
) WITH (vacuum_truncate = false);

COMMENT ON TABLE sluice.run_gates IS
    'Gates of each live gated run, in the order a claim checks them: concurrency slots by (task, rule, key) '
    'and rate limit buckets by key, with the units the run takes.';

CREATE TABLE sluice.concurrency_slots (
    gate_key     text PRIMARY KEY,
    task         text NOT NULL,
    rule         smallint NOT NULL,
    key          text NOT NULL,
    max_running  integer NOT NULL,
    running      integer NOT NULL DEFAULT 0
) WITH (vacuum_truncate = false);

COMMENT ON TABLE sluice.concurrency_slots IS
    'Per concurrency key: the maximum and the runs holding a slot (started and not finished).';

CREATE TABLE sluice.rate_limits (
    key              text PRIMARY KEY,
    max_units        integer NOT NULL,
    period           interval NOT NULL,
    dynamic          boolean NOT NULL DEFAULT false,
    tokens           double precision NOT NULL,
    refilled_at      timestamptz NOT NULL,
    paused_until     timestamptz,
    held             integer NOT NULL DEFAULT 0,
    next_release_at  timestamptz
);

CREATE INDEX rate_limits_release_idx ON sluice.rate_limits (next_release_at) WHERE held > 0;

COMMENT ON TABLE sluice.rate_limits IS
    'Token buckets: max_units per period, refilled continuously; held counts runs waiting for tokens.';

CREATE TABLE sluice.held (
    run_id            bigint PRIMARY KEY,
    gate_key          text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('concurrency', 'rate')),
    queue             text NOT NULL,
    task              text NOT NULL,
    priority          smallint NOT NULL,
    ready_at          timestamptz NOT NULL,
    schedule_deadline timestamptz,
    units             integer NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000, vacuum_truncate = false);

-- One index per kind of gate, each partial, so that a lookup of held runs
-- by run id alone cannot use them and reads the primary key. An index that
-- ends with run_id can serve a condition on run_id by reading all of it.
-- After a VACUUM or ANALYZE that counts no live row in the drained table, the
-- planner takes that for as cheap as a probe (see run_gates_key_idx).
CREATE INDEX held_concurrency_idx ON sluice.held (gate_key, priority DESC, run_id) WHERE kind = 'concurrency';
CREATE INDEX held_rate_idx ON sluice.held (gate_key, priority DESC, run_id) WHERE kind = 'rate';
CREATE INDEX held_deadline_idx ON sluice.held (schedule_deadline) WHERE schedule_deadline IS NOT NULL;

COMMENT ON TABLE sluice.held IS 'Queued runs a concurrency slot or rate limit holds back, by the gate that holds each.';

-- Wake-ups. NOTIFY takes a lock that serializes every notifying commit in
-- the database, so enqueues notify sluice_ready only when a worker waits for
-- that queue. sluice.claim records a worker in sluice.waiting_workers when it
-- returns fewer runs than the worker had room for, and removes it when a
-- claim fills every free slot. An enqueue calls sluice._wake, and just before
-- its transaction commits the C module checks this table once per queue and
-- notifies when a worker waits. The table is unlogged: after a crash it is
-- empty, and workers' fallback polls refill it.
CREATE UNLOGGED TABLE sluice.waiting_workers (
    worker_id  uuid PRIMARY KEY,
    queues     text[] NOT NULL
) WITH (vacuum_truncate = false);

COMMENT ON TABLE sluice.waiting_workers IS
    'Workers whose last claim found less work than they had room for, and the queues they wait on.';

-- Counts claim calls, so that one in ten starts with the oldest run (see
-- sluice.claim). Cycles, and its gaps do not matter.
CREATE SEQUENCE sluice.claim_seq AS bigint CYCLE;

-- Installation-wide settings, one row. Read through sluice.setting_* helpers.
CREATE TABLE sluice.settings (
    only_row           boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    retention          interval NOT NULL DEFAULT '7 days',
    partition_interval interval NOT NULL DEFAULT '1 day'
);

INSERT INTO sluice.settings DEFAULT VALUES;

COMMENT ON TABLE sluice.settings IS
    'Installation settings: how long finished runs are kept and how often a new history partition starts.';
