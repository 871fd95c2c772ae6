import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

struct Flaky: Error, CustomStringConvertible {
    var description: String { "flaky failure with a NUL \u{0} inside" }
}

struct Fatal: NonRetryableError {}

@Suite struct WorkerTests {
    static func worker(_ fixture: SluiceFixture, _ tasks: [any AnyTaskDefinition], slots: Int = 4) -> Worker {
        Worker(
            client: fixture.client, name: "test-worker", slots: slots, tasks: tasks, leaseTimeout: .seconds(3),
            drainTimeout: .seconds(5), pollInterval: .milliseconds(200), handleSignals: false)
    }

    @Test func slotsBoundConcurrency() async throws {
        let fixture = try await SluiceFixture.make()
        let executing = Counter()
        let slow = Sluice.task("slow", retries: .none) { (_: Empty, _: TaskContext) in
            executing.add(1)
            try await Task.sleep(for: .milliseconds(100))
            executing.add(-1)
        }
        try await fixture.client.define(slow)
        let runs = try await fixture.client.enqueueMany(slow, Array(repeating: Empty(), count: 12))
        let worker = Self.worker(fixture, [slow], slots: 3)
        let running = fixture.start(worker)
        for run in runs {
            _ = try await run.result(timeout: .seconds(20))
        }
        #expect(executing.maximum == 3)
        worker.shutdown()
        try await running.value
        await fixture.close()
    }

    @Test func twoConnectionsShareTheSlots() async throws {
        let fixture = try await SluiceFixture.make()
        let executing = Counter()
        let short = Sluice.task("short", retries: .none) { (_: Empty, _: TaskContext) in
            executing.add(1)
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...3)))
            executing.add(-1)
        }
        try await fixture.client.define(short)
        let runs = try await fixture.client.enqueueMany(short, Array(repeating: Empty(), count: 300))
        let worker = Worker(
            client: fixture.client, name: "two-lanes", slots: 4, tasks: [short], pollInterval: .milliseconds(200),
            handleSignals: false, connections: 2)
        let running = fixture.start(worker)
        // Two connections for claims and reports, and the listener.
        try await waitUntil("the worker opened its connections") {
            let rows = try await fixture.sql.query(
                "SELECT count(*)::int FROM pg_stat_activity WHERE application_name = 'sluice-worker two-lanes'")
            return try rows[0].decode(Int.self, at: 0) == 3
        }
        for run in runs {
            _ = try await run.result(timeout: .seconds(30))
        }
        #expect(executing.maximum == 4)
        // Both lanes carried exchanges: the last statement of each is a claim, a claim that
        // waits in the server, or a report.
        let lanes = try await fixture.sql.query(
            """
            SELECT count(*)::int FROM pg_stat_activity
            WHERE application_name = 'sluice-worker two-lanes'
              AND (query LIKE '%sluice.claim(%' OR query LIKE '%sluice.claim_or_wait(%'
                   OR query LIKE '%sluice.complete(%')
            """)
        #expect(try lanes[0].decode(Int.self, at: 0) == 2)
        let statuses = try await fixture.sql.query(
            "SELECT status::text, count(*)::int FROM sluice.runs WHERE task = 'short' GROUP BY 1")
        #expect(statuses.count == 1)
        #expect(try statuses[0].decode(String.self, at: 0) == "succeeded")
        #expect(try statuses[0].decode(Int.self, at: 1) == 300)
        worker.shutdown()
        try await running.value
        await fixture.close()
    }

    @Test func invalidSlotsAndConnectionsAreRejected() async throws {
        let fixture = try await SluiceFixture.make()
        let noop = Sluice.task("noop") { (_: Empty, _: TaskContext) in }
        let cases: [(Worker, String)] = [
            (Worker(client: fixture.client, slots: 0, tasks: [noop], handleSignals: false),
             "invalid slots: 0; allowed values are 1 to 100000"),
            (Worker(client: fixture.client, tasks: [noop], handleSignals: false, connections: 9),
             "invalid connections: 9; allowed values are 1 to 8"),
        ]
        for (worker, message) in cases {
            let error = await #expect(throws: SluiceError.self) { try await worker.run() }
            #expect(error?.message == message)
            #expect(error?.code == .invalidOption)
        }
        await fixture.close()
    }

    @Test func failingHandlerRetriedThenSucceeds() async throws {
        let fixture = try await SluiceFixture.make()
        let flaky = Sluice.task("flaky", retries: .fixed(maxAttempts: 3, delay: .zero)) {
            (_: Empty, context: TaskContext) -> Sum in
            if context.attempt < 3 {
                throw Flaky()
            }
            return Sum(sum: context.attempt)
        }
        let worker = Self.worker(fixture, [flaky])
        let running = fixture.start(worker)
        try await waitUntil("the worker defined its task") {
            try await fixture.sql.query("SELECT 1 FROM sluice.tasks WHERE name = 'flaky'").count == 1
        }
        let run = try await fixture.client.enqueue(flaky, Empty())
        #expect(try await run.result(timeout: .seconds(10)) == Sum(sum: 3))
        let errors = try await fixture.sql.query(
            "SELECT error->>'message' FROM sluice.attempt_errors WHERE run_id = $1 ORDER BY attempt", [run.id])
        #expect(errors.count == 2)
        #expect(try errors[0].decode(String.self, at: 0) == "flaky failure with a NUL \\u0000 inside")
        #expect(fixture.logger.events.contains { $0.message.contains("will be retried") })
        worker.shutdown()
        try await running.value
        await fixture.close()
    }

    @Test func nonRetryableErrorFailsAtOnce() async throws {
        let fixture = try await SluiceFixture.make()
        let calls = Counter()
        let fatal = Sluice.task("fatal", retries: .fixed(maxAttempts: 5, delay: .zero)) { (_: Empty, _: TaskContext) in
            calls.add(1)
            throw Fatal()
        }
        let wrapped = Sluice.task("wrapped", retries: .fixed(maxAttempts: 5, delay: .zero)) {
            (_: Empty, _: TaskContext) in
            calls.add(1)
            throw .nonRetryable(Flaky())
        }
        try await fixture.client.define(fatal)
        try await fixture.client.define(wrapped)
        let worker = Self.worker(fixture, [fatal, wrapped])
        let running = fixture.start(worker)
        for run in [try await fixture.client.enqueue(fatal, Empty()), try await fixture.client.enqueue(wrapped, Empty())] {
            let error = await #expect(throws: SluiceError.self) {
                try await run.result(timeout: .seconds(10))
            }
            #expect(error?.code == .runFailed)
            #expect(try await run.info().attempt == 1)
        }
        #expect(calls.value == 2)
        worker.shutdown()
        try await running.value
        await fixture.close()
    }

    @Test func cancelStopsRunningHandler() async throws {
        let fixture = try await SluiceFixture.make()
        let started = Counter()
        let observedReason = LockedBox<CancellationReason?>(nil)
        let waiter = Sluice.task("waiter") { (_: Empty, context: TaskContext) in
            started.add(1)
            do {
                try await Task.sleep(for: .seconds(60))
            } catch {
                observedReason.set(context.cancellationReason)
                throw error
            }
        }
        try await fixture.client.define(waiter)
        let run = try await fixture.client.enqueue(waiter, Empty())
        let worker = Self.worker(fixture, [waiter])
        let running = fixture.start(worker)
        try await waitUntil("the handler started") { started.value == 1 }
        #expect(try await run.cancel(reason: "no longer needed"))
        try await waitUntil("the handler saw the cancellation") { observedReason.get() != nil }
        #expect(observedReason.get() == .cancelledByUser)
        let error = await #expect(throws: SluiceError.self) {
            try await run.result(timeout: .seconds(5))
        }
        #expect(error?.code == .runCancelled)
        #expect(error?.message.contains("no longer needed") == true)
        worker.shutdown()
        try await running.value
        await fixture.close()
    }

    @Test func executionTimeoutCancelsHandler() async throws {
        let fixture = try await SluiceFixture.make()
        let observedReason = LockedBox<CancellationReason?>(nil)
        let stuck = Sluice.task("stuck", retries: .none, timeout: .seconds(1)) { (_: Empty, context: TaskContext) in
            do {
                try await Task.sleep(for: .seconds(60))
            } catch {
                observedReason.set(context.cancellationReason)
                throw error
            }
        }
        try await fixture.client.define(stuck)
        let run = try await fixture.client.enqueue(stuck, Empty())
        let worker = Self.worker(fixture, [stuck])
        let running = fixture.start(worker)
        let error = await #expect(throws: SluiceError.self) {
            try await run.result(timeout: .seconds(10))
        }
        #expect(error?.code == .runFailed)
        #expect(error?.message.contains("timed out") == true)
        #expect(observedReason.get() == .deadlinePassed)
        worker.shutdown()
        try await running.value
        await fixture.close()
    }

    /// The worker keeps one timer for the earliest deadline of its handlers, so a run with a
    /// shorter timeout that starts after a long one must move the timer earlier.
    @Test func shorterTimeoutStartedLaterTimesOut() async throws {
        let fixture = try await SluiceFixture.make()
        let patientStarted = Counter()
        let patientDeadline = LockedBox<Date?>(nil)
        let release = Counter()
        let patient = Sluice.task("patient", retries: .none, timeout: .seconds(60)) { (_: Empty, context: TaskContext) in
            patientDeadline.set(context.deadline)
            patientStarted.add(1)
            while release.value == 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        let hasty = Sluice.task("hasty", retries: .none, timeout: .seconds(1)) { (_: Empty, _: TaskContext) in
            try await Task.sleep(for: .seconds(60))
        }
        try await fixture.client.define(patient)
        try await fixture.client.define(hasty)
        let patientRun = try await fixture.client.enqueue(patient, Empty())
        let worker = Self.worker(fixture, [patient, hasty])
        let running = fixture.start(worker)
        try await waitUntil("the patient run started") { patientStarted.value == 1 }
        // The context's deadline is the claim's: the start plus the 60 s timeout.
        let secondsLeft = try #require(patientDeadline.get()).timeIntervalSinceNow
        #expect(secondsLeft > 50)
        #expect(secondsLeft <= 60)

        // Twice: after the first deadline fires, the timer waits for the patient run's deadline,
        // and the second hasty run must move it earlier again.
        for _ in 0..<2 {
            let started = ContinuousClock.now
            let hastyRun = try await fixture.client.enqueue(hasty, Empty())
            let error = await #expect(throws: SluiceError.self) {
                try await hastyRun.result(timeout: .seconds(20))
            }
            #expect(error?.code == .runFailed)
            #expect(error?.message.contains("timed out") == true)
            #expect(ContinuousClock.now - started < .seconds(10))
        }

        release.add(1)
        try await patientRun.result(timeout: .seconds(10))
        worker.shutdown()
        try await running.value
        await fixture.close()
    }

    @Test func lateCompletionAfterCancelRejected() async throws {
        let fixture = try await SluiceFixture.make()
        let started = Counter()
        let release = Counter()
        // Ignores cancellation and returns an output once the test releases it.
        let stubborn = Sluice.task("stubborn") { (_: Empty, _: TaskContext) -> Sum in
            started.add(1)
            while release.value == 0 {
                try? await Task.sleep(for: .milliseconds(10))
            }
            return Sum(sum: 1)
        }
        try await fixture.client.define(stubborn)
        let run = try await fixture.client.enqueue(stubborn, Empty())
        let worker = Self.worker(fixture, [stubborn])
        let running = fixture.start(worker)
        try await waitUntil("the handler started") { started.value == 1 }
        #expect(try await run.cancel())
        release.add(1)
        try await waitUntil("the completion was rejected") {
            fixture.logger.events.contains { $0.message.contains("completion rejected") && $0.metadata["run_id"] == String(run.id) }
        }
        let info = try await run.info()
        #expect(info.status == .cancelled)
        #expect(info.output == nil)
        worker.shutdown()
        try await running.value
        await fixture.close()
    }

    @Test func idleWorkerWaitsInTheServer() async throws {
        let fixture = try await SluiceFixture.make()
        let ran = Counter()
        let ping = Sluice.task("ping") { (_: Empty, _: TaskContext) in
            ran.add(1)
        }
        try await fixture.client.define(ping)
        let worker = Self.worker(fixture, [ping])
        let running = fixture.start(worker)
        try await waitUntil("the idle worker's claim waits in the server") {
            let rows = try await fixture.sql.query(
                """
                SELECT count(*)::int FROM pg_stat_activity
                WHERE application_name = 'sluice-worker test-worker' AND wait_event_type = 'Extension'
                  AND query LIKE '%sluice.claim_or_wait%'
                """)
            return try rows[0].decode(Int.self, at: 0) == 1
        }
        let run = try await fixture.client.enqueue(ping, Empty())
        _ = try await run.result(timeout: .seconds(10))
        #expect(ran.value == 1)
        // A shutdown waits for the wait in flight, which the worker keeps short.
        let stopping = ContinuousClock.now
        worker.shutdown()
        try await running.value
        #expect(ContinuousClock.now - stopping < .seconds(3))
        await fixture.close()
    }

    @Test func idleWorkerWithShortLeaseStaysRegistered() async throws {
        let fixture = try await SluiceFixture.make()
        let ping = Sluice.task("ping") { (_: Empty, _: TaskContext) in }
        try await fixture.client.define(ping)
        // With the minimum lease timeout, heartbeats queue behind the claim that waits in the
        // server on the same connection, which the worker keeps to a quarter of the lease.
        let worker = Worker(
            client: fixture.client, name: "short-lease", slots: 2, tasks: [ping], leaseTimeout: .seconds(1),
            drainTimeout: .seconds(5), pollInterval: .seconds(2), handleSignals: false)
        let running = fixture.start(worker)
        let idleUntil = ContinuousClock.now + .seconds(4)
        while ContinuousClock.now < idleUntil {
            _ = try await fixture.sql.query("SELECT sluice.expire_leases()")
            try await Task.sleep(for: .milliseconds(100))
        }
        let stopped = try await fixture.sql.query(
            "SELECT count(*)::int FROM sluice.workers WHERE name = 'short-lease' AND stopped_at IS NOT NULL")
        #expect(try stopped[0].decode(Int.self, at: 0) == 0)
        let run = try await fixture.client.enqueue(ping, Empty())
        _ = try await run.result(timeout: .seconds(10))
        let stopping = ContinuousClock.now
        worker.shutdown()
        try await running.value
        #expect(ContinuousClock.now - stopping < .seconds(2))
        await fixture.close()
    }

    @Test func shutdownDrainsInFlightHandlers() async throws {
        let fixture = try await SluiceFixture.make()
        let started = Counter()
        let finished = Counter()
        let slow = Sluice.task("drain-slow") { (_: Empty, _: TaskContext) in
            started.add(1)
            try await Task.sleep(for: .milliseconds(500))
            finished.add(1)
        }
        try await fixture.client.define(slow)
        let runs = try await fixture.client.enqueueMany(slow, [Empty(), Empty()])
        let worker = Self.worker(fixture, [slow])
        let running = fixture.start(worker)
        try await waitUntil("both handlers started") { started.value == 2 }
        worker.shutdown()
        try await running.value
        #expect(finished.value == 2)
        for run in runs {
            #expect(try await fixture.status(run.id) == "succeeded")
        }
        let stopped = try await fixture.sql.query(
            "SELECT count(*)::int FROM sluice.workers WHERE stopped_at IS NOT NULL")[0].decode(Int.self, at: 0)
        #expect(stopped == 1)
        await fixture.close()
    }

    @Test func cancellingCallerTaskDrains() async throws {
        let fixture = try await SluiceFixture.make()
        let task = Sluice.task("noop") { (_: Empty, _: TaskContext) in }
        let running = fixture.start(Self.worker(fixture, [task]))
        try await waitUntil("the worker registered") {
            try await fixture.sql.query("SELECT 1 FROM sluice.workers").count == 1
        }
        running.cancel()
        try await running.value
        let stopped = try await fixture.sql.query(
            "SELECT count(*)::int FROM sluice.workers WHERE stopped_at IS NOT NULL")[0].decode(Int.self, at: 0)
        #expect(stopped == 1)
        await fixture.close()
    }
}

/// A value shared between a handler and the test.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `value` is guarded by `lock`.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func get() -> Value {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    func set(_ newValue: Value) {
        lock.lock()
        value = newValue
        lock.unlock()
    }
}
