import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// Rate limits against an in-process worker and a tick loop, timed with the database clock
/// (`started_at` is `sluice.now()` of the claiming transaction).
@Suite(.serialized) struct RateLimitTests {
    static func task() -> TaskDefinition<FlowInput, Empty> {
        Sluice.task("flow-rate", retries: .fixed(maxAttempts: 3, delay: .zero), rateLimits: [.static("flow-api")]) {
            (_: FlowInput, _: TaskContext) in
        }
    }

    static func startedCount(_ fixture: FlowFixture) async throws -> Int {
        try await fixture.integer("SELECT count(*)::int FROM sluice.runs WHERE started_at IS NOT NULL")
    }

    /// Seconds between the first and the last start among runs started at or after `since`.
    static func startSpread(_ fixture: FlowFixture, since: Date = .distantPast) async throws -> Double {
        try await fixture.double(
            "SELECT extract(epoch FROM max(started_at) - min(started_at))::float8 FROM sluice.runs WHERE started_at >= $1",
            [since])
    }

    static func waitUntilAllSucceeded(_ fixture: FlowFixture, _ count: Int) async throws {
        try await waitUntil("all \(count) runs succeeded", timeout: .seconds(20)) {
            try await fixture.integer("SELECT count(*)::int FROM sluice.runs WHERE status = 'succeeded'") == count
        }
    }

    /// 80 runs at 20 per second with a full bucket of 20: the first 20 start at once and the
    /// other 60 need 60 refilled units, so the starts span 3.0 s. The database enforces the
    /// lower bound exactly. The upper bound allows 0.5 s because a run waits at most one tick
    /// (20 ms) plus a claim round trip after its units refill, and the bucket keeps refilling
    /// meanwhile, so the delays do not add up; the margin covers a loaded two-core machine.
    @Test func backlogDrainsAtTheSetRate() async throws {
        let fixture = try await FlowFixture.make()
        try await fixture.client.setRateLimit("flow-api", limit: 20, per: .second)
        let task = Self.task()
        try await fixture.client.define(task)
        _ = try await fixture.client.enqueueMany(task, Array(repeating: FlowInput(key: "a"), count: 80))
        let ticking = fixture.startTicking()
        let worker = fixture.worker("rate-worker", tasks: [task], slots: 100)
        let running = Task { try await worker.run() }

        try await Self.waitUntilAllSucceeded(fixture, 80)
        worker.shutdown()
        try await running.value
        ticking.cancel()

        let spread = try await Self.startSpread(fixture)
        #expect(spread >= 2.99, "80 runs at 20/s started within \(spread) s")
        #expect(spread <= 3.5, "80 runs at 20/s took \(spread) s to start")
        let burst = try await fixture.integer(
            """
            SELECT count(*)::int FROM sluice.runs
            WHERE started_at < (SELECT min(started_at) FROM sluice.runs) + interval '100 milliseconds'
            """)
        #expect(burst >= 20)
        #expect(burst <= 22)
        await fixture.close()
    }

    /// 60 runs at 10 per second; once 20 started, the limit becomes 40 per second. The rest,
    /// about 40 runs, then start within about 1 s of the change instead of 4 s. The bucket
    /// contains at most 10 units at the change, hence the lower bound.
    @Test func changedLimitAppliesToWaitingRuns() async throws {
        let fixture = try await FlowFixture.make()
        try await fixture.client.setRateLimit("flow-api", limit: 10, per: .second)
        let task = Self.task()
        try await fixture.client.define(task)
        _ = try await fixture.client.enqueueMany(task, Array(repeating: FlowInput(key: "a"), count: 60))
        let ticking = fixture.startTicking()
        let worker = fixture.worker("rate-worker", tasks: [task], slots: 100)
        let running = Task { try await worker.run() }

        try await waitUntil("20 runs started", timeout: .seconds(10)) {
            try await Self.startedCount(fixture) >= 20
        }
        try await fixture.client.setRateLimit("flow-api", limit: 40, per: .second)
        let changedAt = try await fixture.sql.query("SELECT sluice.now()")[0].decode(Date.self, at: 0)
        let remaining = 60 - (try await Self.startedCount(fixture))
        try await Self.waitUntilAllSucceeded(fixture, 60)
        worker.shutdown()
        try await running.value
        ticking.cancel()

        let lastStart = try await fixture.sql.query("SELECT max(started_at) FROM sluice.runs")[0].decode(Date.self, at: 0)
        let drain = lastStart.timeIntervalSince(changedAt)
        #expect(drain >= Double(remaining - 10) / 40 - 0.01, "\(remaining) runs drained in \(drain) s")
        #expect(drain <= Double(remaining) / 40 + 0.5, "\(remaining) runs drained in \(drain) s")
        await fixture.close()
    }

    /// Runs held by a rate limit survive a stop of the worker and the tick loop, and drain at
    /// the set rate after both start again. The bucket refilled to 10 during the pause, so the
    /// n runs left start over at least (n - 10) / 10 s.
    @Test func heldRunsDrainAfterRestart() async throws {
        let fixture = try await FlowFixture.make()
        try await fixture.client.setRateLimit("flow-api", limit: 10, per: .second)
        let task = Self.task()
        try await fixture.client.define(task)
        _ = try await fixture.client.enqueueMany(task, Array(repeating: FlowInput(key: "a"), count: 40))
        let ticking = fixture.startTicking()
        let worker = fixture.worker("rate-worker", tasks: [task], slots: 100)
        let running = Task { try await worker.run() }

        try await waitUntil("15 runs started", timeout: .seconds(10)) {
            try await Self.startedCount(fixture) >= 15
        }
        worker.shutdown()
        try await running.value
        ticking.cancel()
        _ = await ticking.result
        let startedBeforeStop = try await Self.startedCount(fixture)
        #expect(try await fixture.integer("SELECT count(*)::int FROM sluice.held") > 0)
        #expect(try await fixture.client.rateLimits().first?.waiting ?? 0 > 0)

        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await Self.startedCount(fixture) == startedBeforeStop)

        let restartedAt = try await fixture.sql.query("SELECT sluice.now()")[0].decode(Date.self, at: 0)
        let restartedTicking = fixture.startTicking()
        let restartedWorker = fixture.worker("rate-worker", tasks: [task], slots: 100)
        let restartedRunning = Task { try await restartedWorker.run() }
        try await Self.waitUntilAllSucceeded(fixture, 40)
        restartedWorker.shutdown()
        try await restartedRunning.value
        restartedTicking.cancel()

        let left = 40 - startedBeforeStop
        let spread = try await Self.startSpread(fixture, since: restartedAt)
        #expect(spread >= Double(left - 10) / 10 - 0.01, "\(left) runs started within \(spread) s")
        #expect(spread <= Double(left - 10) / 10 + 0.5, "\(left) runs took \(spread) s to start")
        #expect(try await fixture.integer("SELECT count(*)::int FROM sluice.held") == 0)
        await fixture.close()
    }
}
