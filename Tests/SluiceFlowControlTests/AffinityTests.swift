import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// Affinity: required labels filter workers before preferences rank them.
@Suite struct AffinityTests {
    /// Returns the number of runs each worker name started.
    static func startsByWorker(_ fixture: FlowFixture) async throws -> [String: Int] {
        let rows = try await fixture.sql.query(
            "SELECT w.name, count(*)::int FROM sluice.runs r JOIN sluice.workers w ON w.id = r.worker_id GROUP BY w.name")
        var result: [String: Int] = [:]
        for row in rows {
            result[try row.decode(String.self, at: 0)] = try row.decode(Int.self, at: 1)
        }
        return result
    }

    @Test func requiredLabelBeatsPreferenceScore() async throws {
        let fixture = try await FlowFixture.make()
        let task = Sluice.task(
            "flow-gpu", retries: .none,
            affinity: [.require("gpu", .equal("a100")), .prefer("memory_gb", .greaterOrEqual(64), weight: 5)]
        ) { (_: FlowInput, _: TaskContext) in }
        try await fixture.client.define(task)

        // "big-cpu" meets the preference but lacks the required label; "small-gpu" meets only
        // the requirement; "big-gpu" meets both, so it scores highest.
        let workers = [
            fixture.worker("big-cpu", tasks: [task], slots: 50, labels: ["memory_gb": 256]),
            fixture.worker("small-gpu", tasks: [task], slots: 50, labels: ["gpu": "a100", "memory_gb": 32]),
            fixture.worker("big-gpu", tasks: [task], slots: 50, labels: ["gpu": "a100", "memory_gb": 80]),
        ]
        let running = workers.map { worker in Task { try await worker.run() } }
        try await waitUntil("three workers registered") {
            try await fixture.integer("SELECT count(*)::int FROM sluice.workers WHERE stopped_at IS NULL") == 3
        }

        let first = try await fixture.client.enqueueMany(task, Array(repeating: FlowInput(key: "a"), count: 20))
        for run in first {
            _ = try await run.result(timeout: .seconds(10))
        }
        var starts = try await Self.startsByWorker(fixture)
        #expect(starts["big-gpu"] == 20)
        #expect(starts["small-gpu"] == nil)
        #expect(starts["big-cpu"] == nil)

        // Without its gpu label, big-gpu no longer qualifies; small-gpu is the only candidate.
        try await workers[2].setLabels(["memory_gb": 80])
        #expect(workers[2].labels == ["memory_gb": 80])
        let stored = try await fixture.sql.query(
            "SELECT labels::text FROM sluice.workers WHERE name = 'big-gpu' AND stopped_at IS NULL")
        #expect(try stored[0].decode(String.self, at: 0) == #"{"memory_gb": 80}"#)
        let second = try await fixture.client.enqueueMany(task, Array(repeating: FlowInput(key: "a"), count: 20))
        for run in second {
            _ = try await run.result(timeout: .seconds(10))
        }
        starts = try await Self.startsByWorker(fixture)
        #expect(starts["big-gpu"] == 20)
        #expect(starts["small-gpu"] == 20)
        #expect(starts["big-cpu"] == nil)

        for worker in workers {
            worker.shutdown()
        }
        for task in running {
            try await task.value
        }
        await fixture.close()
    }

    /// Labels set before `run()` are sent with the registration.
    @Test func labelsSetBeforeRunRegistered() async throws {
        let fixture = try await FlowFixture.make()
        let task = Sluice.task("flow-labels", retries: .none) { (_: FlowInput, _: TaskContext) in }
        let worker = fixture.worker("labelled", tasks: [task], labels: ["zone": "a"])
        try await worker.setLabels(["zone": "b", "cores": 16])
        let running = Task { try await worker.run() }
        try await waitUntil("the worker registered") {
            try await fixture.integer("SELECT count(*)::int FROM sluice.workers WHERE stopped_at IS NULL") == 1
        }
        let stored = try await fixture.sql.query("SELECT labels::text FROM sluice.workers")
        #expect(try stored[0].decode(String.self, at: 0) == #"{"zone": "b", "cores": 16}"#)
        worker.shutdown()
        try await running.value
        await fixture.close()
    }
}
