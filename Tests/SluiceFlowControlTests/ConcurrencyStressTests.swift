import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// Concurrency keys against real worker processes that fail, get cancelled and get killed.
@Suite(.serialized) struct ConcurrencyStressTests {
    /// The highest values the sampler saw.
    struct Observed: Sendable {
        var samples = 0
        var maxRunningPerKey = 0
        var maxLeasesPerKey = 0
        var slotRowsOverMax = 0
        var slotRowsNegative = 0
    }

    /// Checks every 5 ms, on a connection of its own, that no key of `task` has more than its
    /// maximum running, counted three ways: runs in status running, leases, and the slot rows.
    static func sample(_ fixture: FlowFixture, task: String) -> Task<Observed, Error> {
        Task {
            let connection = try await fixture.database.connect(applicationName: "flow-test-sampler")
            var observed = Observed()
            while !Task.isCancelled {
                let rows = try await connection.query(
                    """
                    SELECT
                      (SELECT coalesce(max(n), 0)::int FROM (SELECT count(*) AS n FROM sluice.runs r
                        WHERE r.task = $1 AND r.status = 'running' GROUP BY r.input ->> 'key') x),
                      (SELECT coalesce(max(n), 0)::int FROM (SELECT count(*) AS n FROM sluice.leases l
                        JOIN sluice.runs r ON r.id = l.run_id WHERE r.task = $1 GROUP BY r.input ->> 'key') y),
                      (SELECT count(*)::int FROM sluice.concurrency_slots s WHERE s.task = $1 AND s.running > s.max_running),
                      (SELECT count(*)::int FROM sluice.concurrency_slots s WHERE s.task = $1 AND s.running < 0)
                    """, [task])
                observed.samples += 1
                observed.maxRunningPerKey = max(observed.maxRunningPerKey, try rows[0].decode(Int.self, at: 0))
                observed.maxLeasesPerKey = max(observed.maxLeasesPerKey, try rows[0].decode(Int.self, at: 1))
                observed.slotRowsOverMax += try rows[0].decode(Int.self, at: 2)
                observed.slotRowsNegative += try rows[0].decode(Int.self, at: 3)
                try? await Task.sleep(for: .milliseconds(5))
            }
            await connection.close()
            return observed
        }
    }

    /// Returns the id of the live incarnation of the worker process with `pid`, once registered.
    static func workerID(_ fixture: FlowFixture, pid: Int32) async throws -> UUID {
        var id: UUID?
        try await waitUntil("worker process \(pid) registered", timeout: .seconds(20)) {
            let rows = try await fixture.sql.query(
                "SELECT id FROM sluice.workers WHERE pid = $1 AND stopped_at IS NULL", [Int(pid)])
            id = try rows.first?.decode(UUID.self, at: 0)
            return id != nil
        }
        return id!
    }

    /// Kills a worker process with SIGKILL while it holds at least one lease, and returns the
    /// ids of the runs it held. Its handlers take 1 to 15 ms, so a lease seen a moment earlier
    /// may already be reported. The process is first stopped with SIGSTOP, and after 200 ms,
    /// when the statements it sent have finished, its leases are read: with none, it resumes
    /// and the next lease is awaited.
    static func killWhileRunning(_ fixture: FlowFixture, _ process: Process) async throws -> [Int64] {
        let id = try await workerID(fixture, pid: process.processIdentifier)
        while true {
            try await waitUntil("worker \(id) holds a lease", timeout: .seconds(20)) {
                try await fixture.integer("SELECT count(*)::int FROM sluice.leases WHERE worker_id = $1", [id]) > 0
            }
            kill(process.processIdentifier, SIGSTOP)
            try await Task.sleep(for: .milliseconds(200))
            let rows = try await fixture.sql.query("SELECT run_id FROM sluice.leases WHERE worker_id = $1", [id])
            if !rows.isEmpty {
                FlowWorkerProcess.kill9(process)
                return try rows.map { try $0.decode(Int64.self, at: 0) }
            }
            kill(process.processIdentifier, SIGCONT)
        }
    }

    @Test func perKeyMaximumHoldsUnderStress() async throws {
        let fixture = try await FlowFixture.make()
        let task = FlowTasks.stress
        try await fixture.client.define(task)
        let ticking = fixture.startTicking(every: .milliseconds(50))
        let sampler = Self.sample(fixture, task: task.name)
        var processes = try (0..<3).map {
            try FlowWorkerProcess.launch(fixture, name: "stress-\($0)", task: task.name)
        }
        defer {
            for process in processes {
                FlowWorkerProcess.kill9(process)
            }
        }

        // Four enqueuers, each with its own client and connection, 120 runs each over six keys.
        let enqueuers = (0..<4).map { _ in
            Task {
                let client = try await SluiceClient(connection: fixture.database.connectionString)
                var ids: [Int64] = []
                for _ in 0..<12 {
                    let inputs = (0..<10).map { _ in FlowInput(key: "k\(Int.random(in: 0..<6))") }
                    ids += try await client.enqueueMany(task, inputs).map(\.id)
                    try await Task.sleep(for: .milliseconds(Int.random(in: 40...120)))
                }
                await client.close()
                return ids
            }
        }

        // Random cancels while the runs are queued, held or running.
        let canceller = Task {
            var cancelled = 0
            for _ in 0..<40 {
                try await Task.sleep(for: .milliseconds(25))
                let rows = try await fixture.sql.query(
                    "SELECT id FROM sluice.runs WHERE task = $1 AND status IN ('queued', 'running') "
                        + "ORDER BY random() LIMIT 1", [task.name])
                guard let id = try rows.first?.decode(Int64.self, at: 0) else {
                    continue
                }
                do {
                    if try await fixture.client.cancel(runID: id) {
                        cancelled += 1
                    }
                } catch {
                    Issue.record("sluice.cancel(\(id)) failed: \(error)")
                }
            }
            return cancelled
        }

        // Two workers killed mid-run, each replaced by a new process.
        var orphaned = try await Self.killWhileRunning(fixture, processes[0])
        processes.append(try FlowWorkerProcess.launch(fixture, name: "stress-3", task: task.name))
        orphaned += try await Self.killWhileRunning(fixture, processes[1])
        processes.append(try FlowWorkerProcess.launch(fixture, name: "stress-4", task: task.name))

        var runIDs: [Int64] = []
        for enqueuer in enqueuers {
            runIDs += try await enqueuer.value
        }
        let cancelled = try await canceller.value
        try await waitUntil("every run is final", timeout: .seconds(60)) {
            try await fixture.integer(
                "SELECT count(*)::int FROM sluice.runs WHERE task = $1 AND status NOT IN ('succeeded', 'failed', 'cancelled')",
                [task.name]) == 0
        }
        sampler.cancel()
        ticking.cancel()
        let observed = try await sampler.value

        #expect(runIDs.count == 480)
        #expect(observed.samples > 100)
        #expect(observed.maxRunningPerKey <= 2)
        #expect(observed.maxLeasesPerKey <= 2)
        #expect(observed.maxRunningPerKey == 2, "the test never filled a key; it proves nothing")
        #expect(observed.slotRowsOverMax == 0)
        #expect(observed.slotRowsNegative == 0)
        #expect(cancelled > 0)
        #expect(try await fixture.integer("SELECT coalesce(sum(running), 0)::int FROM sluice.concurrency_slots") == 0)
        #expect(try await fixture.integer("SELECT count(*)::int FROM sluice.held") == 0)
        #expect(try await fixture.integer("SELECT count(*)::int FROM sluice.leases") == 0)
        #expect(try await fixture.integer("SELECT count(*)::int FROM sluice.run_gates") == 0)
        // Each run a dead worker held came back through lease expiry, unless it was cancelled.
        #expect(orphaned.count >= 2)
        for runID in orphaned {
            #expect(
                try await fixture.integer(
                    """
                    SELECT count(*)::int FROM sluice.runs r
                    WHERE r.id = $1 AND (r.status = 'cancelled' OR EXISTS (
                        SELECT FROM sluice.attempt_errors e WHERE e.run_id = r.id AND e.error ->> 'kind' = 'lease_expired'))
                    """, [runID]) == 1, "run \(runID) of a killed worker")
        }
        await fixture.close()
    }

    /// A killed worker keeps its run's slot until its lease expires; then the next run of the
    /// key starts on another worker, and not earlier.
    @Test func killedWorkerHoldsSlotUntilLeaseExpires() async throws {
        let fixture = try await FlowFixture.make()
        let task = FlowTasks.solo
        try await fixture.client.define(task)
        let ticking = fixture.startTicking(every: .milliseconds(20))
        defer { ticking.cancel() }

        let doomed = try FlowWorkerProcess.launch(fixture, name: "solo-doomed", task: task.name)
        defer { FlowWorkerProcess.kill9(doomed) }
        let doomedID = try await Self.workerID(fixture, pid: doomed.processIdentifier)
        let first = try await fixture.client.enqueue(task, FlowInput(key: "k", hang: true))
        try await waitUntil("the first run started on the doomed worker", timeout: .seconds(20)) {
            try await fixture.integer(
                "SELECT count(*)::int FROM sluice.leases WHERE run_id = $1 AND worker_id = $2", [first.id, doomedID]) == 1
        }

        let survivor = try FlowWorkerProcess.launch(fixture, name: "solo-survivor", task: task.name)
        defer { FlowWorkerProcess.kill9(survivor) }
        _ = try await Self.workerID(fixture, pid: survivor.processIdentifier)
        let second = try await fixture.client.enqueue(task, FlowInput(key: "k"))
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await first.info().status == .running)
        #expect(try await second.info().status == .queued)

        FlowWorkerProcess.kill9(doomed)
        _ = try await second.result(timeout: .seconds(20))

        let firstInfo = try await first.info()
        #expect(firstInfo.status == .failed)
        #expect(
            try await fixture.sql.query("SELECT error ->> 'kind' FROM sluice.runs WHERE id = $1", [first.id])[0]
                .decode(String.self, at: 0) == "lease_expired")
        // The lease expired lease_timeout after the killed worker's last heartbeat.
        let startedAfterExpiry = try await fixture.sql.query(
            """
            SELECT r.started_at >= w.heartbeat_at + w.lease_timeout, r.started_at >= f.finished_at
            FROM sluice.runs r, sluice.workers w, sluice.runs f
            WHERE r.id = $1 AND w.id = $2 AND f.id = $3
            """, [second.id, doomedID, first.id])
        #expect(try startedAfterExpiry[0].decode(Bool.self, at: 0))
        #expect(try startedAfterExpiry[0].decode(Bool.self, at: 1))
        #expect(try await fixture.integer("SELECT coalesce(sum(running), 0)::int FROM sluice.concurrency_slots") == 0)
        await fixture.close()
    }
}
