-- History maintenance: starting new partitions of sluice.runs and dropping
-- the ones whose runs are all older than the retention period.

CREATE FUNCTION sluice.configure(retention interval DEFAULT NULL, partition_interval interval DEFAULT NULL)
RETURNS sluice.settings
LANGUAGE plpgsql
AS $$
DECLARE
    v_settings sluice.settings;
BEGIN
    IF configure.retention IS NOT NULL THEN
        PERFORM sluice._check_interval('retention', configure.retention, '1 minute', '3650 days');
    END IF;
    IF configure.partition_interval IS NOT NULL THEN
        PERFORM sluice._check_interval('partition_interval', configure.partition_interval, '1 minute', '365 days');
    END IF;
    UPDATE sluice.settings s
    SET retention = coalesce(configure.retention, s.retention),
        partition_interval = coalesce(configure.partition_interval, s.partition_interval)
    RETURNING * INTO v_settings;
    RETURN v_settings;
END
$$;

COMMENT ON FUNCTION sluice.configure(interval, interval) IS
    'Sets how long finished runs are kept (retention) and how often history starts a new partition; '
    'NULL leaves a setting unchanged. Returns the settings.';

-- Starts a new history partition when the current one is older than the
-- partition interval: creates it, then moves the run id sequence to its
-- first id. Ids drawn before the move still fall in the old partition.
CREATE FUNCTION sluice._rotate_partition(p_now timestamptz) RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_current sluice.run_partitions;
    v_interval interval := (SELECT s.partition_interval FROM sluice.settings s);
BEGIN
    -- One rotation at a time, whichever coordinator runs it.
    IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('sluice._rotate_partition')) THEN
        RETURN false;
    END IF;
    SELECT * INTO v_current FROM sluice.run_partitions ORDER BY number DESC LIMIT 1;
    IF v_current.created_at > p_now - v_interval THEN
        RETURN false;
    END IF;
    PERFORM sluice._create_partition(v_current.number + 1);
    UPDATE sluice.run_partitions SET closed_at = p_now WHERE number = v_current.number;
    PERFORM pg_catalog.setval('sluice.run_id_seq', v_current.end_id, false);
    RETURN true;
END
$$;

-- Drops closed partitions whose runs all finished before the retention
-- cutoff, with their idempotency keys and attempt errors. A partition that
-- still holds a live run is kept. The drop waits at most one second for its
-- lock, so a long query on the history delays retention instead of the
-- queue; the next call tries again.
CREATE FUNCTION sluice._drop_expired_partitions(p_now timestamptz) RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_cutoff timestamptz := p_now - (SELECT s.retention FROM sluice.settings s);
    v_partition sluice.run_partitions;
    v_name text;
    v_dropped integer := 0;
BEGIN
    FOR v_partition IN
        SELECT * FROM sluice.run_partitions p WHERE p.closed_at < v_cutoff ORDER BY p.number
    LOOP
        v_name := format('runs_p%s', v_partition.number);
        IF EXISTS (SELECT FROM sluice.runs r
                   WHERE r.id >= v_partition.first_id AND r.id < v_partition.end_id
                     AND (r.status IN ('scheduled', 'queued', 'running') OR r.finished_at >= v_cutoff)) THEN
            CONTINUE;
        END IF;

        SET LOCAL lock_timeout = '1s';
        BEGIN
            -- The first partition is created by the install script and so
            -- belongs to the extension until it is released here.
            IF EXISTS (SELECT FROM pg_catalog.pg_depend d
                       WHERE d.classid = 'pg_catalog.pg_class'::regclass
                         AND d.objid = format('sluice.%I', v_name)::regclass
                         AND d.deptype = 'e') THEN
                EXECUTE format('ALTER EXTENSION sluice DROP TABLE sluice.%I', v_name);
            END IF;
            EXECUTE format('DROP TABLE sluice.%I', v_name);
        EXCEPTION WHEN lock_not_available THEN
            RAISE LOG 'sluice: dropping partition % timed out waiting for its lock; will retry', v_name;
            CONTINUE;
        END;

        DELETE FROM sluice.idempotency_keys k
        WHERE k.run_id >= v_partition.first_id AND k.run_id < v_partition.end_id;
        DELETE FROM sluice.attempt_errors e
        WHERE e.run_id >= v_partition.first_id AND e.run_id < v_partition.end_id;
        DELETE FROM sluice.run_partitions p WHERE p.number = v_partition.number;
        v_dropped := v_dropped + 1;
    END LOOP;
    RETURN v_dropped;
END
$$;

CREATE FUNCTION sluice.maintain(OUT rotated boolean, OUT dropped_partitions integer, OUT deleted_workers integer)
LANGUAGE plpgsql
AS $$
DECLARE
    v_now timestamptz := sluice.now();
BEGIN
    rotated := sluice._rotate_partition(v_now);
    dropped_partitions := sluice._drop_expired_partitions(v_now);
    PERFORM sluice._advance_position_block();
    DELETE FROM sluice.workers w
    WHERE w.stopped_at < v_now - (SELECT s.retention FROM sluice.settings s)
      AND NOT EXISTS (SELECT FROM sluice.leases l WHERE l.worker_id = w.id);
    GET DIAGNOSTICS deleted_workers = ROW_COUNT;
END
$$;

COMMENT ON FUNCTION sluice.maintain() IS
    'Starts a new history partition when the current one is older than partition_interval, drops partitions '
    'whose runs all finished before the retention period, deletes workers stopped before it, and moves the ready '
    'position sequence to its next block when it nears the end of one. The coordinator calls it every minute.';

-- The tables of live runs churn: every run passes through some of them and
-- leaves a dead row behind. Autovacuum visits a database at most once per
-- autovacuum_naptime, and a busy queue leaves dead rows faster than that. The
-- leading coordinator calls this function (every 2 s by default) and vacuums
-- what it lists: tables with at least min_dead dead rows. Their number counts,
-- not their share: with 40,000 runs waiting and 45,000 dead rows in ready, each
-- claim of 50 took 40 to 200 ms, and one vacuum brought it back to 0.1 ms.
CREATE VIEW sluice._hot_table_stats AS
    SELECT s.relid::regclass AS relation, s.n_live_tup AS live_rows, s.n_dead_tup AS dead_rows
    FROM pg_catalog.pg_stat_user_tables s
    WHERE s.schemaname = 'sluice'
      AND s.relname IN ('ready_0', 'ready_1', 'delayed', 'leases_0', 'leases_1', 'held', 'run_gates', 'waiting_workers');

CREATE FUNCTION sluice.hot_tables_to_vacuum(min_dead bigint DEFAULT 1000) RETURNS SETOF regclass
LANGUAGE sql STABLE
AS $$
    SELECT h.relation FROM sluice._hot_table_stats h
    WHERE h.dead_rows >= hot_tables_to_vacuum.min_dead
    ORDER BY h.dead_rows DESC
$$;

COMMENT ON FUNCTION sluice.hot_tables_to_vacuum(bigint) IS
    'Tables of live runs (ready, delayed, leases, held and the flow-control tables) with at least min_dead dead '
    'rows. The coordinator vacuums them every few seconds, sooner than autovacuum.';

-- The coordinator looks for hot tables every 2 s while their dead rows grow,
-- and less often while they do not, so that an idle database is left alone.
CREATE FUNCTION sluice.hot_tables_dead_rows() RETURNS bigint
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(sum(h.dead_rows), 0)::bigint FROM sluice._hot_table_stats h
$$;

COMMENT ON FUNCTION sluice.hot_tables_dead_rows() IS
    'The dead rows of the tables of live runs in all, as the statistics collector last counted them.';

-- Vacuum removes a dead row only once no transaction can still see it, so one
-- long transaction (a report, a session left idle in a transaction) keeps
-- every run deleted from ready and leases since it began. Claims then read
-- past all of them, because the claim index's dead prefix and the worker's
-- dead leases grow with every run. With a snapshot held for 100 s at 2,000
-- runs a second, a claim of 50 took 56 ms on average (bench/RESULTS.md). This
-- function drops those rows.
-- It moves the position sequence to its next block of 2^32, so that new ready
-- rows and the leases of runs claimed from them go to the other generation.
-- Then it copies the live rows of the old generation over and truncates it.
-- TRUNCATE does not wait for old snapshots. Like any TRUNCATE it is not
-- MVCC-safe: a transaction that began before it and reads those tables
-- afterwards finds them without the old generation's rows.
--
-- It runs when the current generation has at least min_dead dead rows while
-- some transaction's snapshot is older than min_snapshot_age transactions,
-- and when an earlier call moved the sequence but could not empty the old
-- generation. It gives up when the old generation has more than max_moved
-- ready runs, since they would be copied under an exclusive lock. It also
-- gives up when it cannot lock the old partitions within lock_wait, since
-- claims queue behind its lock request. It gives up at once, without a lock
-- request, when a transaction that began more than lock_wait ago, or a
-- prepared transaction, holds a lock on them. The coordinator calls it again
-- at its next look. Copied runs keep their order: their new positions come
-- before any position the sequence hands out after the move.
CREATE FUNCTION sluice.shed_dead_rows(
    min_dead         bigint DEFAULT 1000,
    max_moved        integer DEFAULT 10000,
    lock_wait        interval DEFAULT '250 milliseconds',
    min_snapshot_age integer DEFAULT 1000,
    min_statement_age interval DEFAULT '1 second'
) RETURNS boolean
LANGUAGE plpgsql
SET jit = off
SET lock_timeout = '250ms'
AS $$
DECLARE
    v_last bigint;
    v_block bigint;
    v_current smallint;
    v_old smallint;
    v_wait interval := least(shed_dead_rows.lock_wait, pg_catalog.current_setting('deadlock_timeout')::interval / 2);
    v_lowest bigint;
    v_highest bigint;
    v_first bigint;
    v_above bigint;
    v_below bigint;
    v_moved bigint;
    v_holder integer;
    v_holder_since timestamptz;
    v_held_table regclass;
BEGIN
    -- Under a snapshot taken before the lock, the copy would miss runs
    -- committed while it waited, and the truncation would remove them.
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM sluice._require_read_committed('shed_dead_rows');
    END IF;
    PERFORM sluice._check_range('min_dead', shed_dead_rows.min_dead, 0, 1000000000);
    PERFORM sluice._check_range('max_moved', shed_dead_rows.max_moved, 0, 1000000);
    PERFORM sluice._check_interval('lock_wait', shed_dead_rows.lock_wait, '1 millisecond', '1 minute');
    PERFORM sluice._check_range('min_snapshot_age', shed_dead_rows.min_snapshot_age, 0, 1000000000);
    PERFORM sluice._check_interval('min_statement_age', shed_dead_rows.min_statement_age, '0', '1 hour');
    -- The SET clause above restores the caller's lock_timeout on return. The
    -- wait stays under deadlock_timeout, so that in a cycle of lock waits this
    -- call gives up before the deadlock detector cancels another transaction.
    PERFORM pg_catalog.set_config('lock_timeout', (extract(epoch FROM v_wait) * 1000)::bigint::text, true);
    IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('sluice.shed_dead_rows')) THEN
        RETURN false;
    END IF;
    -- Read under the advisory lock: a shed or maintain() that moved the
    -- sequence in between would swap the generations.
    v_last := (SELECT s.last_value FROM sluice.ready_position_seq s);
    v_block := v_last >> 32;
    v_current := (v_block & 1)::smallint;
    v_old := 1 - v_current;

    IF pg_catalog.pg_relation_size(format('sluice.ready_%s', v_old)) = 0
       AND pg_catalog.pg_relation_size(format('sluice.leases_%s', v_old)) = 0 THEN
        IF (SELECT coalesce(sum(h.dead_rows), 0) FROM sluice._hot_table_stats h
            WHERE h.relation IN (format('sluice.ready_%s', v_current)::regclass,
                                 format('sluice.leases_%s', v_current)::regclass)) < shed_dead_rows.min_dead THEN
            RETURN false;
        END IF;
        -- Dead rows are counted whether vacuum can remove them or not. Under
        -- load they pile up between vacuums, so only a snapshot older than
        -- min_snapshot_age transactions, which keeps vacuum from removing
        -- them, is a reason to truncate. Only client sessions count: a
        -- vacuum's own snapshot reached an age of 1,300 at 25,000 runs a
        -- second. The age grows with the transactions the queue runs, and a
        -- held snapshot slows them, so the default stays low. With 10,000, no
        -- shed came in the first 30 s, while throughput fell to an eighth.
        -- The snapshot of a statement still running counts once it has run
        -- for min_statement_age. Shorter ones end before a shed would help,
        -- and idle workers wait in sluice.claim_or_wait under a snapshot of
        -- up to half a second, which at a few thousand transactions a second
        -- elsewhere is older than min_snapshot_age.
        IF coalesce(greatest(
               (SELECT max(pg_catalog.age(a.backend_xmin)) FROM pg_catalog.pg_stat_activity a
                WHERE a.datname = pg_catalog.current_database() AND a.pid <> pg_catalog.pg_backend_pid()
                  AND a.backend_type = 'client backend'
                  AND (a.state IS DISTINCT FROM 'active'
                       OR a.query_start <= pg_catalog.clock_timestamp() - shed_dead_rows.min_statement_age)),
               (SELECT max(pg_catalog.age(p.transaction)) FROM pg_catalog.pg_prepared_xacts p),
               (SELECT max(pg_catalog.age(s.xmin)) FROM pg_catalog.pg_replication_slots s)), 0)
           < shed_dead_rows.min_snapshot_age THEN
            RETURN false;
        END IF;
        -- The sequence is not transactional: from here on new ready rows go to
        -- the other generation, even if this call gives up below.
        v_block := v_block + 1;
        PERFORM pg_catalog.setval('sluice.ready_position_seq', (v_block << 32) + (1::bigint << 31), false);
        v_old := v_current;
        v_current := 1 - v_current;
    END IF;

    IF (SELECT count(*) FROM (SELECT FROM sluice.ready r WHERE ((r.position >> 32) & 1) = v_old
                              LIMIT shed_dead_rows.max_moved + 1) r) > shed_dead_rows.max_moved THEN
        RAISE LOG 'sluice: shed skipped: generation % of the ready queue has more than max_moved = % runs to copy',
            v_old, shed_dead_rows.max_moved;
        RETURN false;
    END IF;
    -- Some transactions hold a lock on the old generation for long: a report
    -- that read sluice.ready, an application's transaction that enqueued and
    -- stayed open, a pg_dump, an autovacuum of the bloated partition. One that
    -- began more than lock_wait ago is unlikely to end within lock_wait, and
    -- waiting for it would stall the claims queued behind the lock request.
    -- A prepared transaction counts at any age, because pg_locks does not
    -- show when it began. Without pg_read_all_stats the start times of other
    -- roles' sessions are hidden, and the lock below waits for them.
    -- pg_stat_activity is read once per transaction unless cleared, and the
    -- age check above read it already.
    PERFORM pg_catalog.pg_stat_clear_snapshot();
    SELECT k.pid, a.xact_start, k.relation::regclass INTO v_holder, v_holder_since, v_held_table
    FROM pg_catalog.pg_locks k LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = k.pid
    WHERE k.locktype = 'relation' AND k.granted
      AND k.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
      AND k.relation IN (format('sluice.ready_%s', v_old)::regclass, format('sluice.leases_%s', v_old)::regclass)
      AND (k.pid IS NULL
           OR (k.pid <> pg_catalog.pg_backend_pid() AND a.xact_start < pg_catalog.clock_timestamp() - v_wait))
    ORDER BY a.xact_start NULLS FIRST
    LIMIT 1;
    IF FOUND AND v_holder IS NULL THEN
        RAISE LOG 'sluice: shed skipped: a prepared transaction holds a lock on %; the coordinator tries again '
                  'at its next look, after COMMIT PREPARED or ROLLBACK PREPARED ends it', v_held_table;
        RETURN false;
    ELSIF FOUND THEN
        RAISE LOG 'sluice: shed skipped: backend PID % (transaction started %) holds a lock on %; the coordinator '
                  'tries again at its next look', v_holder, v_holder_since, v_held_table;
        RETURN false;
    END IF;
    -- Claims, completions and enqueues that use the old generation finish
    -- first, and those that come later wait for this transaction. Each of the
    -- two lock waits may take lock_wait. A claim reads its worker's leases
    -- before it reads ready, so the leases come first here too. In the other
    -- order a claim holding the old leases partition and this lock each
    -- waited for the other. A cancel takes ready first, so this call can wait
    -- for a cancel that waits for it, until lock_wait ends.
    BEGIN
        EXECUTE format('LOCK TABLE sluice.leases_%s, sluice.ready_%s IN ACCESS EXCLUSIVE MODE', v_old, v_old);
    EXCEPTION WHEN lock_not_available THEN
        RAISE LOG 'sluice: shed skipped: locking generation % of the ready and lease tables timed out after % ms, '
                  'the coordinator tries again at its next look', v_old, extract(epoch FROM v_wait) * 1000;
        RETURN false;
    END;

    -- The copies keep their order. They go between the runs of the current
    -- generation that became ready before them and those that became ready
    -- after them. That is just below the first later position (or the
    -- sequence's next value), or else just above the last earlier one, within
    -- a block of the current generation. After a move of the sequence there
    -- are 2^31 free positions below its middle, and maintain() moves it before
    -- it runs into the next block. Runs that an enqueue left in the old
    -- generation after an earlier shed sort ahead of the runs that shed
    -- copied, as their old positions are lower.
    SELECT min(r.position), max(r.position), count(*) INTO v_lowest, v_highest, v_moved
    FROM sluice.ready r WHERE ((r.position >> 32) & 1) = v_old;
    IF v_moved > shed_dead_rows.max_moved THEN
        RAISE LOG 'sluice: shed skipped: generation % of the ready queue has more than max_moved = % runs to copy',
            v_old, shed_dead_rows.max_moved;
        RETURN false;
    END IF;
    IF v_moved > 0 THEN
        v_above := least((SELECT min(r.position) FROM sluice.ready r
                          WHERE ((r.position >> 32) & 1) = v_current AND r.position > v_highest),
                         pg_catalog.nextval('sluice.ready_position_seq'));
        v_below := (SELECT max(r.position) FROM sluice.ready r
                    WHERE ((r.position >> 32) & 1) = v_current AND r.position < v_lowest);
        IF v_above - v_moved >= greatest(coalesce(v_below + 1, 0), (v_above >> 32) << 32) THEN
            v_first := v_above - v_moved;
        ELSIF v_below + v_moved < least(v_above, ((v_below >> 32) + 1) << 32) THEN
            v_first := v_below + 1;
        ELSE
            RAISE LOG 'sluice: shed skipped: generation % of the ready queue has no room for % runs between '
                      'positions % and %', v_current, v_moved, v_below, v_above;
            RETURN false;
        END IF;
    END IF;
    INSERT INTO sluice.ready (run_id, queue, task, priority, position, ready_at, schedule_deadline, gated)
    SELECT r.run_id, r.queue, r.task, r.priority, v_first - 1 + pg_catalog.row_number() OVER (ORDER BY r.position),
           r.ready_at, r.schedule_deadline, r.gated
    FROM sluice.ready r WHERE ((r.position >> 32) & 1) = v_old;
    INSERT INTO sluice.leases (run_id, worker_id, attempt, started_at, deadline, slot_cost, gated, generation)
    SELECT l.run_id, l.worker_id, l.attempt, l.started_at, l.deadline, l.slot_cost, l.gated, v_current
    FROM sluice.leases l WHERE l.generation = v_old;
    EXECUTE format('TRUNCATE sluice.ready_%s, sluice.leases_%s', v_old, v_old);
    RETURN true;
END
$$;

-- Moves the ready position sequence to the middle of its next block once it
-- is three quarters through its current one: 2^30 runs made ready after a
-- move, 3 * 2^30 from a fresh install. Left alone it would run into the next
-- block at its start, and a shed would then find no positions below that
-- block's runs for the runs it copies (see shed_dead_rows). New runs go to
-- the other generation from here on. The old one drains through claims, or a
-- shed copies what is left.
CREATE FUNCTION sluice._advance_position_block() RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_last bigint;
BEGIN
    IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('sluice.shed_dead_rows')) THEN
        RETURN false;
    END IF;
    v_last := (SELECT s.last_value FROM sluice.ready_position_seq s);
    IF v_last & ((1::bigint << 32) - 1) < 3 * (1::bigint << 30) THEN
        RETURN false;
    END IF;
    PERFORM pg_catalog.setval('sluice.ready_position_seq', (((v_last >> 32) + 1) << 32) + (1::bigint << 31), false);
    RETURN true;
END
$$;

COMMENT ON FUNCTION sluice.shed_dead_rows(bigint, integer, interval, integer, interval) IS
    'Drops the dead rows of sluice.ready and sluice.leases that vacuum cannot remove while a long transaction '
    'runs (a snapshot older than min_snapshot_age transactions, of a session idle in its transaction or of a '
    'statement running for min_statement_age): switches new rows to the other partition, '
    'copies the old partition''s live rows over (at most max_moved ready runs) and truncates it, waiting at '
    'most lock_wait for each of its two locks. Returns whether it did. The coordinator calls it after its vacuums.';
