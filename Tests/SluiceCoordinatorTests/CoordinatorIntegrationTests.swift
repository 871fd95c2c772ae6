import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

@testable import SluiceCoordinator

/// Coordinators against a real database from `TestPostgres`.
@Suite(.timeLimit(.minutes(1))) struct CoordinatorIntegrationTests {
    /// Options that keep takeover and reconnects quick in tests. The 1 s maximum sleep bounds
    /// how long a leader whose session was terminated takes to notice it.
    static let fastOptions = CoordinatorOptions(
        leadershipRetryInterval: .milliseconds(200), maximumSleep: .seconds(1),
        reconnectPolicy: ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(500), maximumAttempts: nil))

    @Test func exactlyOneOfTwoLeads() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let observer = try await database.connect()
        let first = Coordinator(connectionString: database.connectionString, options: Self.fastOptions, logger: NoOpLogger())
        let second = Coordinator(connectionString: database.connectionString, options: Self.fastOptions, logger: NoOpLogger())
        let firstRun = Task { await first.run() }
        let secondRun = Task { await second.run() }

        try await waitUntil("one coordinator leads") { first.isLeader || second.isLeader }
        // Give the other one several retry intervals to wrongly take the lock too.
        try await Task.sleep(for: .milliseconds(700))
        #expect(first.isLeader != second.isLeader)
        #expect(try await advisoryLockHolders(observer, keys: Coordinator.lockKeys).count == 1)

        first.stop()
        second.stop()
        await firstRun.value
        await secondRun.value
        // The server releases a session's locks when its backend exits, shortly after the close.
        try await waitUntil("the lock is released") { try await advisoryLockHolders(observer, keys: Coordinator.lockKeys).isEmpty }
        await observer.close()
    }

    /// Terminating the leader's session frees the lock. Either coordinator may win it next:
    /// the old leader reconnects and competes like the candidate does. What must hold is that a
    /// new session leads within seconds and that exactly one coordinator says it leads.
    @Test func newSessionLeadsAfterLeaderBackendTerminated() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let observer = try await database.connect()
        let first = Coordinator(connectionString: database.connectionString, options: Self.fastOptions, logger: NoOpLogger())
        let second = Coordinator(connectionString: database.connectionString, options: Self.fastOptions, logger: NoOpLogger())
        let firstRun = Task { await first.run() }
        let secondRun = Task { await second.run() }
        try await waitUntil("one coordinator leads") { first.isLeader || second.isLeader }
        let holders = try await advisoryLockHolders(observer, keys: Coordinator.lockKeys)
        try #require(holders.count == 1)

        let terminatedAt = ContinuousClock.now
        try await observer.execute("SELECT pg_terminate_backend($1)", [holders[0]])
        try await waitUntil("a new session holds the lock") {
            let current = try await advisoryLockHolders(observer, keys: Coordinator.lockKeys)
            return current.count == 1 && current[0] != holders[0]
        }
        #expect(ContinuousClock.now - terminatedAt < .seconds(3))
        try await waitUntil("exactly one coordinator says it leads") { first.isLeader != second.isLeader }
        #expect(try await advisoryLockHolders(observer, keys: Coordinator.lockKeys).count == 1)

        first.stop()
        second.stop()
        await firstRun.value
        await secondRun.value
        await observer.close()
    }

    @Test func leaderStopReleasesLockForOther() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let first = Coordinator(connectionString: database.connectionString, options: Self.fastOptions, logger: NoOpLogger())
        let firstRun = Task { await first.run() }
        try await waitUntil("first leads") { first.isLeader }

        let second = Coordinator(connectionString: database.connectionString, options: Self.fastOptions, logger: NoOpLogger())
        let secondRun = Task { await second.run() }
        try await Task.sleep(for: .milliseconds(300))
        #expect(!second.isLeader)

        let stoppedAt = ContinuousClock.now
        first.stop()
        await firstRun.value
        try await waitUntil("second leads") { second.isLeader }
        #expect(ContinuousClock.now - stoppedAt < .seconds(2))

        secondRun.cancel()
        await secondRun.value
        #expect(!second.isLeader)
    }

    /// A transaction with an open snapshot keeps vacuum from removing the rows that claims and
    /// completions delete. The leader then truncates them away with `sluice.shed_dead_rows()`,
    /// and the runs still waiting keep their order.
    @Test func deadRowsKeptByHeldSnapshotAreShed() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let connection = try await database.connect()
        try await connection.execute("SELECT sluice.define_task('churn')")
        let workerID = try await connection.query(
            "SELECT sluice.register_worker('churner', ARRAY['churn'], slots => 2000)")[0].decode(UUID.self, at: 0)
        let holder = try await database.connect()
        try await holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        _ = try await holder.query("SELECT count(*) FROM sluice.tasks")

        try await connection.execute(
            "SELECT sluice.enqueue_many('churn', array_fill('{}'::jsonb, ARRAY[2000]))")
        try await connection.execute("""
            WITH c AS (SELECT run_id, attempt FROM sluice.claim($1, 2000))
            SELECT count(*) FROM sluice.complete((SELECT array_agg(run_id) FROM c), (SELECT array_agg(attempt) FROM c),
                                                 (SELECT array_agg('{}'::jsonb) FROM c))
            """, [workerID])
        let waiting = try await connection.query(
            "SELECT array_agg(id ORDER BY id) FROM unnest(sluice.enqueue_many('churn', array_fill('{}'::jsonb, ARRAY[3]))) AS id"
        )[0].decode([Int64].self, at: 0)
        // The shed acts on snapshots older than 1,000 transactions: make the holder's that old.
        try await connection.execute("""
            DO $$ BEGIN FOR i IN 1..1000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$
            """)
        try await connection.execute("SELECT pg_stat_force_next_flush()")

        let coordinator = Coordinator(connectionString: database.connectionString, options: Self.fastOptions, logger: NoOpLogger())
        let run = Task { await coordinator.run() }
        try await waitUntil("the old generation is truncated", timeout: .seconds(30), interval: .milliseconds(100)) {
            try await connection.query(
                "SELECT pg_relation_size('sluice.ready_0') + pg_relation_size('sluice.leases_0') = 0"
            )[0].decode(Bool.self, at: 0)
        }
        var claimed: [Int64] = []
        for _ in waiting {
            claimed += try await connection.query("SELECT run_id FROM sluice.claim($1, 1)", [workerID])
                .map { try $0.decode(Int64.self, at: 0) }
        }
        #expect(claimed == waiting)

        try await holder.execute("ROLLBACK")
        coordinator.stop()
        await run.value
        await holder.close()
        await connection.close()
    }

    @Test func delayedRunPromotedOnTime() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let connection = try await database.connect()
        try await connection.execute("SELECT sluice.define_task('delayed-test')")
        // sluice_ready goes only to waiting workers: a worker whose claim found nothing waits.
        try await connection.execute(
            "SELECT count(*) FROM sluice.claim(sluice.register_worker('waiting', ARRAY['delayed-test']), 1)")
        let coordinator = Coordinator(connectionString: database.connectionString, options: Self.fastOptions, logger: NoOpLogger())
        let run = Task { await coordinator.run() }
        try await waitUntil("the coordinator leads") { coordinator.isLeader }

        // The test learns of the promotion from the notification tick() sends, not by polling.
        let listener = try await PostgresListener.start(database.connectionString, channels: ["sluice_ready"])
        let runID = try await connection.query(
            "SELECT sluice.enqueue('delayed-test', '{}', delay => '1 second')")[0].decode(Int64.self, at: 0)
        var iterator = listener.notifications.makeAsyncIterator()
        let event = await iterator.next()
        #expect(event == .notification(channel: "sluice_ready", payload: "default", processID: event.processID))

        let rows = try await connection.query(
            "SELECT r.status::text, extract(epoch FROM q.ready_at - r.created_at)::float8 "
                + "FROM sluice.runs r JOIN sluice.ready q ON q.run_id = r.id WHERE r.id = $1", [runID])
        try #require(rows.count == 1)
        #expect(try rows[0].decode(String.self, at: 0) == "queued")
        let waited = try rows[0].decode(Double.self, at: 1)
        #expect(waited >= 1.0)
        #expect(waited < 1.2)

        listener.close()
        coordinator.stop()
        await run.value
        await connection.close()
    }

    @Test func tickResultReadsEveryCountColumn() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let connection = try await database.connect()
        let rows = try await connection.query(
            "SELECT 2 AS promoted, 0 AS expired, 7 AS fired, NULL::timestamptz AS next_due_at, "
                + "1.5::float8 AS sluice_seconds_until_due")
        let result = try Coordinator.tickResult(from: rows)
        #expect(result.counts == ["promoted": 2, "expired": 0, "fired": 7])
        #expect(result.secondsUntilDue == 1.5)
        await connection.close()
    }
}

extension Optional where Wrapped == PostgresListenerEvent {
    /// The sending backend's process ID of a notification, or 0.
    fileprivate var processID: Int32 {
        if case .notification(_, _, let processID) = self {
            return processID
        }
        return 0
    }
}
