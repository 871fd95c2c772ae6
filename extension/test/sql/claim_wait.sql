-- sluice.claim_or_wait: a claim that waits in the server for runs. The
-- wake-up by another session's enqueue is tested from Swift
-- (ClaimOrWaitTests), because pg_regress runs one session at a time.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION sluice;
CREATE EXTENSION sluice;

SELECT sluice.define_task('email');
SELECT sluice.register_worker('w1', ARRAY['email'], slots => 4) AS w1 \gset

-- Bad timeouts are rejected, naming the value and the range.
SELECT * FROM sluice.claim_or_wait(:'w1', 1, NULL);
SELECT * FROM sluice.claim_or_wait(:'w1', 1, '-1 second');
SELECT * FROM sluice.claim_or_wait(:'w1', 1, '61 seconds');
SELECT * FROM sluice.claim_or_wait(:'w1', 1, '1 month');
SELECT * FROM sluice.claim_or_wait(:'w1', 1, '1 day');
-- The claim's own errors come through.
SELECT * FROM sluice.claim_or_wait(:'w1', 0, '0');
SELECT * FROM sluice.claim_or_wait('00000000-0000-0000-0000-000000000000', 1, '0');

-- The first call claims nothing: it makes the worker a waiter and listens,
-- without waiting, since neither would take effect before it commits.
SELECT pg_catalog.clock_timestamp() AS started \gset
SELECT count(*) AS claimed FROM sluice.claim_or_wait(:'w1', 4, '5 seconds');
SELECT pg_catalog.clock_timestamp() - :'started'::timestamptz < '4 seconds' AS returned_at_once;
SELECT pg_catalog.pg_listening_channels();
SELECT count(*) AS waiting FROM sluice.waiting_workers WHERE worker_id = :'w1';

-- From then on an empty queue makes it wait until the timeout.
SELECT pg_catalog.clock_timestamp() AS started \gset
SELECT count(*) AS claimed FROM sluice.claim_or_wait(:'w1', 4, '300 milliseconds');
SELECT pg_catalog.clock_timestamp() - :'started'::timestamptz >= '300 milliseconds' AS waited;

-- Inside a transaction block it does not wait: the block's earlier
-- statements would hold their locks through the wait.
BEGIN;
SELECT pg_catalog.clock_timestamp() AS started \gset
SELECT count(*) AS claimed FROM sluice.claim_or_wait(:'w1', 1, '5 seconds');
SELECT pg_catalog.clock_timestamp() - :'started'::timestamptz < '4 seconds' AS returned_at_once;
COMMIT;

-- Ready runs are claimed at once, like sluice.claim claims them. The session
-- stops listening first, so that the enqueues' notifications, which name a
-- process id, stay out of this file.
UNLISTEN *;
SELECT sluice.enqueue('email', '{"n": 1}') AS e1 \gset
SELECT sluice.enqueue('email', '{"n": 2}') AS e2 \gset
SELECT array_agg(run_id ORDER BY run_id) = ARRAY[:e1, :e2]::bigint[] AS claimed_both, min(attempt) AS attempt
FROM sluice.claim_or_wait(:'w1', 4, '5 seconds');
SELECT count(*) AS leases FROM sluice.leases WHERE worker_id = :'w1';

-- A failed call leaves no subtransaction behind: a PL/pgSQL block catches
-- its error and the session goes on.
DO $$
BEGIN
    PERFORM * FROM sluice.claim_or_wait('00000000-0000-0000-0000-000000000000', 1, '0');
EXCEPTION WHEN SQLSTATE 'SL005' THEN
    RAISE WARNING 'caught %', SQLSTATE;
END
$$;
SELECT count(*) AS leases_kept FROM sluice.leases WHERE worker_id = :'w1';

-- A call whose transaction wrote before it does not wait, even outside a
-- transaction block: a PL/pgSQL loop's wait would hold the leases of its
-- earlier claims, and move sluice.clock_offset a second time. With no worker
-- waiting, the enqueue sends no notification into this file.
LISTEN sluice_ready;
DELETE FROM sluice.waiting_workers;
SELECT sluice.enqueue('email', '{"n": 3}') AS e3 \gset
CREATE TEMP TABLE loop_claims (call integer, claimed bigint, waited interval);
DO $$
DECLARE
    v_started timestamptz;
BEGIN
    FOR i IN 1..2 LOOP
        v_started := pg_catalog.clock_timestamp();
        INSERT INTO loop_claims
        SELECT i, count(*), pg_catalog.clock_timestamp() - v_started
        FROM sluice.claim_or_wait((SELECT id FROM sluice.workers WHERE name = 'w1'), 4, '3 seconds');
    END LOOP;
END
$$;
SELECT call, claimed, waited < '1 second' AS returned_at_once FROM loop_claims ORDER BY call;
SELECT count(*) AS leases FROM sluice.leases WHERE worker_id = :'w1';
