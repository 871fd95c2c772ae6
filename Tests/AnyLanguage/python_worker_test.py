#!/usr/bin/python3
"""A Sluice worker written in Python with nothing but SQL calls.

It proves the worker protocol in docs/sql-api.md needs no Swift: it
registers, waits on LISTEN sluice_ready, claims in batches, completes,
fails with a retry, heartbeats, notices a cancellation, waits for a run
inside the server with sluice.claim_or_wait, and stops. Run it
against a server with the extension installed (libpq environment variables
select the server), for example: scripts/with-postgres Tests/AnyLanguage/python_worker_test.py
"""

import json
import select
import sys
import threading
import time

import psycopg2
import psycopg2.extensions

DATABASE = "sluice_python_worker_test"


def connect(database):
    connection = psycopg2.connect(dbname=database)
    connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    return connection


def rows(cursor, sql, parameters=()):
    cursor.execute(sql, parameters)
    return cursor.fetchall()


def one(cursor, sql, parameters=()):
    return rows(cursor, sql, parameters)[0][0]


def main():
    admin = connect("postgres")
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    admin.cursor().execute(f"CREATE DATABASE {DATABASE}")
    database = connect(DATABASE)
    sql = database.cursor()
    sql.execute("CREATE EXTENSION sluice")
    sql.execute("SELECT sluice.define_task('word-count', backoff_base => '0', max_attempts => 2)")

    listener = connect(DATABASE)
    listener.cursor().execute("LISTEN sluice_ready")
    listener.cursor().execute("LISTEN sluice_cancel")

    texts = ["one two three", "four five", "fail once", "six", "to be cancelled"]
    run_ids = [one(sql, "SELECT sluice.enqueue('word-count', %s)", (json.dumps({"text": t}),)) for t in texts]
    worker_id = one(sql, "SELECT sluice.register_worker('python-worker', ARRAY['word-count'], slots => 4)")
    cancelled = run_ids[4]

    failures = []

    def check(condition, message):
        if not condition:
            failures.append(message)
            print("FAIL:", message)

    deadline = time.monotonic() + 30
    seen_cancel = False
    while time.monotonic() < deadline:
        claimed = rows(sql, "SELECT run_id, attempt, input FROM sluice.claim(%s, 4)", (worker_id,))
        completed_ids, attempts, outputs = [], [], []
        for run_id, attempt, run_input in claimed:
            if run_id == cancelled:
                # A user cancels this run while it runs; the worker hears it.
                sql.execute("SELECT sluice.cancel(%s, 'cancelled by the test')", (run_id,))
                continue
            if run_input["text"] == "fail once" and attempt == 1:
                status = one(sql, "SELECT sluice.fail(%s, %s, 'transient failure')", (run_id, attempt))
                check(status == "queued", f"retryable failure should requeue, got {status}")
                continue
            completed_ids.append(run_id)
            attempts.append(attempt)
            outputs.append(json.dumps({"words": len(run_input["text"].split())}))
        if completed_ids:
            accepted = {row[0] for row in rows(sql, "SELECT * FROM sluice.complete(%s::bigint[], %s::int[], %s::jsonb[])",
                                                (completed_ids, attempts, outputs))}
            check(accepted == set(completed_ids), f"completions rejected: {set(completed_ids) - accepted}")

        lost = [row[0] for row in rows(sql, "SELECT * FROM sluice.heartbeat(%s, %s::bigint[])",
                                       (worker_id, [cancelled]))]
        if cancelled in lost:
            seen_cancel = True

        statuses = dict(rows(sql, "SELECT id, status FROM sluice.runs"))
        if all(str(status) in ("succeeded", "cancelled") for status in statuses.values()):
            break
        # Sleep until a notification arrives rather than polling.
        if select.select([listener], [], [], 1.0)[0]:
            listener.poll()
            listener.notifies.clear()

    final = {row[0]: row[1:] for row in rows(sql, "SELECT id, status, attempt, output FROM sluice.runs")}
    check(final[run_ids[0]] == ("succeeded", 1, {"words": 3}), f"run 1: {final[run_ids[0]]}")
    check(final[run_ids[1]] == ("succeeded", 1, {"words": 2}), f"run 2: {final[run_ids[1]]}")
    check(final[run_ids[2]] == ("succeeded", 2, {"words": 2}), f"retried run: {final[run_ids[2]]}")
    check(final[cancelled][0] == "cancelled", f"cancelled run: {final[cancelled]}")
    check(seen_cancel, "heartbeat did not report the cancelled run")

    # An idle worker waits inside the server. The first call listens and
    # returns at once; the second waits until another session enqueues.
    waiter = connect(DATABASE)
    rows(waiter.cursor(), "SELECT * FROM sluice.claim_or_wait(%s, 4, '0')", (worker_id,))
    producer = connect(DATABASE)
    enqueue_later = threading.Timer(
        0.3, lambda: producer.cursor().execute("SELECT sluice.enqueue('word-count', '{\"text\": \"late\"}')"))
    enqueue_later.start()
    started = time.monotonic()
    woken = rows(waiter.cursor(), "SELECT run_id, attempt FROM sluice.claim_or_wait(%s, 4, '10 seconds')", (worker_id,))
    waited = time.monotonic() - started
    enqueue_later.join()
    check(len(woken) == 1 and waited < 5, f"claim_or_wait returned {woken} after {waited:.2f} s")
    for run_id, attempt in woken:
        one(sql, "SELECT sluice.complete(%s, %s, '{}')", (run_id, attempt))
    # The waiting session receives the notifications it listens to; this client keeps them in a list.
    waiter.notifies.clear()
    waiter.close()
    producer.close()
    check(one(sql, "SELECT sluice.stop_worker(%s)", (worker_id,)) == 0, "worker still held runs at stop")

    listener.close()
    database.close()
    admin.cursor().execute(f"DROP DATABASE {DATABASE}")
    checks = 8
    print(f"python worker: {checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
