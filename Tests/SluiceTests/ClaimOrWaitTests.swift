import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// `sluice.claim_or_wait` across sessions: what pg_regress, with one session, cannot show.
@Suite struct ClaimOrWaitTests {
    /// Registers a worker for `email` on `connection` and makes its session a waiter: the first
    /// call inserts the waiting row and listens, and both take effect when it commits.
    static func waitingWorker(_ fixture: SluiceFixture, on connection: PostgresConnection) async throws -> UUID {
        try await fixture.sql.execute("SELECT sluice.define_task('email')")
        let workerID = try await connection.query(
            "SELECT sluice.register_worker('waiter', ARRAY['email'], slots => 4)")[0].decode(UUID.self, at: 0)
        let first = try await connection.query("SELECT * FROM sluice.claim_or_wait($1, 4, '0')", [workerID])
        #expect(first.count == 0)
        return workerID
    }

    /// Returns the process id of `connection`'s backend.
    static func backendPID(_ connection: PostgresConnection) async throws -> Int {
        try await connection.query("SELECT pg_backend_pid()")[0].decode(Int.self, at: 0)
    }

    /// Waits until the backend `pid` waits on its latch inside claim_or_wait.
    static func waitUntilWaiting(_ fixture: SluiceFixture, pid: Int) async throws {
        try await waitUntil("claim_or_wait waits in the server") {
            let rows = try await fixture.sql.query(
                "SELECT count(*)::int FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Extension'", [pid])
            return try rows[0].decode(Int.self, at: 0) == 1
        }
    }

    /// A session that waits in claim_or_wait for up to 30 s.
    struct Waiting {
        let connection: PostgresConnection
        let pid: Int
        let claim: Task<PostgresRows, Error>
    }

    /// Opens a session, makes it a waiter and returns once its call waits in the server. A
    /// `statementTimeout` is set on the session first.
    static func startWaiting(_ fixture: SluiceFixture, statementTimeout: String? = nil) async throws -> Waiting {
        let waiter = try await fixture.database.connect()
        if let statementTimeout {
            _ = try await waiter.query("SELECT set_config('statement_timeout', $1, false)", [statementTimeout])
        }
        let workerID = try await waitingWorker(fixture, on: waiter)
        let pid = try await backendPID(waiter)
        let claim = Task {
            try await waiter.query("SELECT run_id FROM sluice.claim_or_wait($1, 4, '30 seconds')", [workerID])
        }
        try await waitUntilWaiting(fixture, pid: pid)
        return Waiting(connection: waiter, pid: pid, claim: claim)
    }

    @Test func enqueueFromAnotherSessionEndsTheWait() async throws {
        let fixture = try await SluiceFixture.make()
        let started = ContinuousClock.now
        let waiting = try await Self.startWaiting(fixture)
        let runID = try await fixture.sql.query("SELECT sluice.enqueue('email', '{}')")[0].decode(Int64.self, at: 0)
        let rows = try await waiting.claim.value
        #expect(rows.count == 1)
        #expect(try rows[0].decode(Int64.self, at: 0) == runID)
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(try await fixture.status(runID) == "running")
        // The claim after the wait reads the time of the claim, not of its transaction's start,
        // which came before the enqueue.
        let startedAfterEnqueue = try await fixture.sql.query(
            "SELECT started_at >= created_at FROM sluice.runs WHERE id = $1", [runID])[0].decode(Bool.self, at: 0)
        #expect(startedAfterEnqueue)
        #expect(try await waiting.connection.query("SELECT current_setting('sluice.clock_offset', true)")[0]
            .decode(String?.self, at: 0) ?? "" == "")
        await waiting.connection.close()
        await fixture.close()
    }

    @Test func waitHoldsNoLocks() async throws {
        let fixture = try await SluiceFixture.make()
        let waiting = try await Self.startWaiting(fixture)
        // Its attempt's locks (the worker's advisory lock, the queue tables) went with the
        // rolled-back subtransaction. Left are the transaction's own ids and the lock that
        // nextval takes on sluice.claim_seq, which PostgreSQL keeps to the transaction's end.
        // Only ALTER SEQUENCE and DROP wait for that one.
        let locks = try await fixture.sql.query(
            """
            SELECT coalesce(string_agg(l.locktype || ' ' || coalesce(l.relation::regclass::text, '') || ' ' || l.mode,
                                       ', '), '')
            FROM pg_locks l
            WHERE l.pid = $1 AND l.locktype NOT IN ('virtualxid', 'transactionid')
              AND l.relation IS DISTINCT FROM 'sluice.claim_seq'::regclass
            """, [waiting.pid])
        let heldLocks = try locks[0].decode(String.self, at: 0)
        #expect(heldLocks == "", "locks held while waiting: \(heldLocks)")
        // So the shed's exclusive lock on the queue tables is granted while it waits.
        let shed = try await fixture.sql.query(
            "SELECT sluice.shed_dead_rows(min_dead => 0, min_snapshot_age => 0)")[0].decode(Bool.self, at: 0)
        #expect(shed)
        _ = try await fixture.sql.query("SELECT sluice.enqueue('email', '{}')")
        #expect(try await waiting.claim.value.count == 1)
        await waiting.connection.close()
        await fixture.close()
    }

    @Test func shedIgnoresShortWaitSnapshot() async throws {
        let fixture = try await SluiceFixture.make()
        let waiting = try await Self.startWaiting(fixture)
        // A transaction after the waiter's snapshot makes that snapshot one transaction old. The
        // enqueue goes to a queue that no worker waits on, so it does not end the wait.
        try await fixture.sql.execute("SELECT sluice.define_task('report', queue => 'reports')")
        _ = try await fixture.sql.query("SELECT sluice.enqueue('report', '{}')")
        let whileYoung = try await fixture.sql.query(
            "SELECT sluice.shed_dead_rows(min_dead => 0, min_snapshot_age => 1, min_statement_age => '1 hour')")
        #expect(try whileYoung[0].decode(Bool.self, at: 0) == false)
        let counted = try await fixture.sql.query(
            "SELECT sluice.shed_dead_rows(min_dead => 0, min_snapshot_age => 1, min_statement_age => '0')")
        #expect(try counted[0].decode(Bool.self, at: 0))
        _ = try await fixture.sql.query("SELECT sluice.enqueue('email', '{}')")
        #expect(try await waiting.claim.value.count == 1)
        await waiting.connection.close()
        await fixture.close()
    }

    /// Makes a worker of another queue wait, so that an enqueue there sends a notification,
    /// which wakes every listening backend.
    static func prepareOtherQueue(_ fixture: SluiceFixture) async throws {
        try await fixture.sql.execute("SELECT sluice.define_task('report', queue => 'reports')")
        let other = try await fixture.sql.query(
            "SELECT sluice.register_worker('reporter', ARRAY['report'], slots => 1)")[0].decode(UUID.self, at: 0)
        _ = try await fixture.sql.query("SELECT * FROM sluice.claim($1, 1)", [other])
    }

    @Test func otherQueueWakeSkipsTheClaim() async throws {
        let fixture = try await SluiceFixture.make()
        let waiting = try await Self.startWaiting(fixture)
        try await Self.prepareOtherQueue(fixture)
        let claimsBefore = try await fixture.sql.query("SELECT last_value FROM sluice.claim_seq")[0]
            .decode(Int64.self, at: 0)
        _ = try await fixture.sql.query("SELECT sluice.enqueue('report', '{}')")
        try await Task.sleep(for: .milliseconds(300))
        try await Self.waitUntilWaiting(fixture, pid: waiting.pid)
        // Woken for a queue it does not serve, the waiter looked for ready runs of its own and,
        // finding none, went back to waiting without a claim, which would have taken a number.
        let claimsAfter = try await fixture.sql.query("SELECT last_value FROM sluice.claim_seq")[0]
            .decode(Int64.self, at: 0)
        #expect(claimsAfter == claimsBefore)
        _ = try await fixture.sql.query("SELECT sluice.enqueue('email', '{}')")
        #expect(try await waiting.claim.value.count == 1)
        await waiting.connection.close()
        await fixture.close()
    }

    @Test func timeoutAfterSkippedWakeFailsCleanly() async throws {
        let fixture = try await SluiceFixture.make()
        let waiting = try await Self.startWaiting(fixture, statementTimeout: "2s")
        try await Self.prepareOtherQueue(fixture)
        // The wake-up for the other queue ends in the probe, and the timeout then cancels the wait.
        _ = try await fixture.sql.query("SELECT sluice.enqueue('report', '{}')")
        let outcome = await waiting.claim.result
        var sqlState: String?
        if case .failure(let error as PostgresError) = outcome {
            sqlState = error.sqlState
        }
        #expect(sqlState == "57014")
        let alive = try await waiting.connection.query("SELECT 1")[0].decode(Int.self, at: 0)
        #expect(alive == 1)
        let stillWaiting = try await fixture.sql.query(
            "SELECT count(*)::int FROM sluice.waiting_workers w JOIN sluice.workers k ON k.id = w.worker_id "
                + "WHERE k.name = 'waiter'")[0].decode(Int.self, at: 0)
        #expect(stillWaiting == 1)
        await waiting.connection.close()
        await fixture.close()
    }
}
