import Foundation
import Sluice
import SluicePostgres
import Testing

/// Group round-robin fairness: a key with thousands of waiting runs must not delay a key with
/// a few. Claims are made with `sluice.claim` and every started run completes at once, so the
/// order of admissions is deterministic.
@Suite struct FairnessTests {
    static let maxPerKey = 2
    static let bigRuns = 3000
    static let smallRuns = 5

    /// Defines the task, enqueues the big key's runs and then the small key's, and registers a
    /// worker with `slots` slots. Returns the worker id.
    static func prepare(_ fixture: FlowFixture, slots: Int) async throws -> UUID {
        let task = Sluice.task("fair", retries: .none, concurrency: [.perKey("$.key", max: maxPerKey)]) {
            (_: FlowInput, _: TaskContext) in
        }
        try await fixture.client.define(task)
        _ = try await fixture.client.enqueueMany(task, Array(repeating: FlowInput(key: "big"), count: bigRuns))
        _ = try await fixture.client.enqueueMany(task, Array(repeating: FlowInput(key: "small"), count: smallRuns))
        let rows = try await fixture.sql.query(
            "SELECT sluice.register_worker('fair-worker', ARRAY['fair'], slots => $1)", [slots])
        return try rows[0].decode(UUID.self, at: 0)
    }

    /// Claims up to `slots` runs, completes every claimed run, and repeats `rounds` times.
    /// Returns the keys of the started runs in admission order.
    static func admit(_ fixture: FlowFixture, worker: UUID, slots: Int, rounds: Int) async throws -> [String] {
        var keys: [String] = []
        for _ in 0..<rounds {
            let claimed = try await fixture.sql.query(
                "SELECT run_id, attempt, input ->> 'key' FROM sluice.claim($1, $2) ORDER BY run_id", [worker, slots])
            for row in claimed {
                keys.append(try row.decode(String.self, at: 2))
                try await fixture.sql.execute(
                    "SELECT sluice.complete($1::bigint, $2::int, '{}'::jsonb)", [try row.decode(Int64.self, at: 0), try row.decode(Int.self, at: 1)])
            }
        }
        return keys
    }

    /// The number of big-key admissions before each small-key admission.
    static func bigAdmissionsBeforeEachSmall(_ keys: [String]) -> [Int] {
        var big = 0
        var result: [Int] = []
        for key in keys {
            if key == "big" {
                big += 1
            } else {
                result.append(big)
            }
        }
        return result
    }

    /// A worker with more slots than the big key's maximum. A key never has more than its
    /// maximum of runs ready or running (the rest wait in sluice.held), so one claim admits at
    /// most `maxPerKey` big runs and gives the remaining slots to the small key. Small run k
    /// (from 1) therefore starts after at most maxPerKey * ceil(k / maxPerKey) big admissions:
    /// the small key also advances by at most maxPerKey per claim.
    @Test func smallKeyNotDelayedByBigBacklog() async throws {
        let fixture = try await FlowFixture.make()
        let slots = 4
        let worker = try await Self.prepare(fixture, slots: slots)
        let keys = try await Self.admit(fixture, worker: worker, slots: slots, rounds: 10)

        let before = Self.bigAdmissionsBeforeEachSmall(keys)
        #expect(before.count == Self.smallRuns)
        for (index, bigCount) in before.enumerated() {
            let k = index + 1
            let bound = Self.maxPerKey * ((k + Self.maxPerKey - 1) / Self.maxPerKey)
            #expect(bigCount <= bound, "small run \(k) started after \(bigCount) big runs; bound \(bound)")
        }
        #expect(
            try await fixture.integer(
                "SELECT waiting::int FROM sluice.concurrency_status WHERE task = 'fair' AND key = 'big'")
                == Self.bigRuns - keys.filter { $0 == "big" }.count - Self.maxPerKey)
        await fixture.close()
    }

    /// A worker with one slot, so each claim admits one run. A run handed a freed slot
    /// re-enters the ready queue behind the runs already there, so the keys alternate: small
    /// run k starts after at most k * maxPerKey big admissions.
    @Test func smallKeyNotStarvedOnOneSlotWorker() async throws {
        let fixture = try await FlowFixture.make()
        let worker = try await Self.prepare(fixture, slots: 1)
        let keys = try await Self.admit(fixture, worker: worker, slots: 1, rounds: 40)
        let before = Self.bigAdmissionsBeforeEachSmall(keys)

        #expect(before.count == Self.smallRuns)
        for (index, bigCount) in before.enumerated() {
            #expect(bigCount <= (index + 1) * Self.maxPerKey, "small run \(index + 1) started after \(bigCount) big runs")
        }
        await fixture.close()
    }
}
