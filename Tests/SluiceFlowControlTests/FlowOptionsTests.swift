import Foundation
import Sluice
import SluicePostgres
import Testing

/// The typed flow-control options: how they map onto define_task's JSON, and how bad values
/// are rejected, locally and by the database.
@Suite struct FlowOptionsTests {
    static func task(
        concurrency: [ConcurrencyRule] = [], rateLimits: [RateLimitRule] = [], affinity: [AffinityRule] = [],
        slotCost: Int = 1
    ) -> TaskDefinition<FlowInput, Empty> {
        Sluice.task(
            "options-probe", concurrency: concurrency, rateLimits: rateLimits, affinity: affinity, slotCost: slotCost
        ) { (_: FlowInput, _: TaskContext) in }
    }

    @Test func optionsStoredAsDefineTaskJSON() async throws {
        let fixture = try await FlowFixture.make()
        try await fixture.client.setRateLimit("openai", limit: 60, per: .minute)
        let task = Self.task(
            concurrency: [.perKey("$.key", max: 1), .total(max: 10, strategy: .cancelNewest)],
            rateLimits: [.static("openai", units: 2), .perKey("$.account", limit: 100, per: .minute, units: .fromInput("$.cost"))],
            affinity: [.require("gpu", .equal("a100")), .prefer("memory_gb", .greaterOrEqual(64), weight: 5)],
            slotCost: 2)
        try await fixture.client.define(task)

        let rows = try await fixture.sql.query(
            """
            SELECT concurrency::text, rate_limits::text, affinity::text, slot_cost
            FROM sluice.tasks WHERE name = 'options-probe'
            """)
        #expect(
            try rows[0].decode(String.self, at: 0)
                == #"[{"key": "$.key", "max": 1, "strategy": "group_round_robin"}, "#
                + #"{"key": "all", "max": 10, "strategy": "cancel_newest"}]"#)
        #expect(
            try rows[0].decode(String.self, at: 1)
                == #"[{"key": "openai", "units": 2}, "#
                + #"{"key": "$.account", "limit": 100, "units": "$.cost", "period": "minute"}]"#)
        #expect(
            try rows[0].decode(String.self, at: 2)
                == #"[{"op": "=", "label": "gpu", "value": "a100", "weight": 1, "required": true}, "#
                + #"{"op": ">=", "label": "memory_gb", "value": 64, "weight": 5, "required": false}]"#)
        #expect(try rows[0].decode(Int.self, at: 3) == 2)
        await fixture.close()
    }

    @Test func badRulesRejectedBeforeTheDatabase() async throws {
        let fixture = try await FlowFixture.make()
        let cases: [(TaskDefinition<FlowInput, Empty>, [String])] = [
            (Self.task(concurrency: [.perKey("user_id", max: 1)]), ["concurrency key", "\"user_id\"", "starts with $"]),
            (Self.task(concurrency: [.perKey("", max: 1)]), ["concurrency key", "non-empty"]),
            (Self.task(concurrency: [.perKey("$.user", max: 0)]), ["concurrency max", "\"$.user\"", ": 0"]),
            (Self.task(concurrency: [.total(max: -3)]), ["concurrency max", ": -3"]),
            (Self.task(rateLimits: [.perKey("$.account", limit: 0, per: .minute)]), ["rate limit", "\"$.account\"", ": 0"]),
            (Self.task(rateLimits: [.perKey("account", limit: 5, per: .minute)]), ["rate limit key", "\"account\""]),
            (Self.task(rateLimits: [.static("openai", units: 0)]), ["rate limit units", "\"openai\"", ": 0"]),
            (Self.task(rateLimits: [.perKey("$.a", limit: 5, per: .minute, units: 6)]), ["6 exceed the limit of 5"]),
            (Self.task(rateLimits: [.perKey("$.a", limit: 5, per: .minute, units: .fromInput("cost"))]), ["\"cost\""]),
            (Self.task(rateLimits: [.static("$.openai")]), ["rate limit name", "\"$.openai\""]),
            (Self.task(affinity: [.require("gpu", LabelComparison("~", "a100"))]), ["comparator \"~\"", "\"gpu\""]),
            (Self.task(affinity: [.prefer("gpu", .equal("a100"), weight: 0)]), ["affinity weight", ": 0"]),
            (Self.task(affinity: [.require("", .equal(1))]), ["affinity label"]),
            (Self.task(slotCost: 0), ["slotCost: 0"]),
        ]
        for (task, fragments) in cases {
            await expectSluiceError(.invalidOption, containing: fragments) {
                try await fixture.client.define(task)
            }
        }
        #expect(try await fixture.integer("SELECT count(*)::int FROM sluice.tasks") == 0)
        await fixture.close()
    }

    @Test func badRulesRejectedByTheDatabase() async throws {
        let fixture = try await FlowFixture.make()
        try await fixture.client.setRateLimit("small", limit: 2, per: .second)
        await expectSluiceError(.invalidOption, containing: ["\"$.user[\"", "not a valid SQL/JSON path"]) {
            try await fixture.client.define(Self.task(concurrency: [.perKey("$.user[", max: 1)]))
        }
        await expectSluiceError(.invalidOption, containing: ["'missing'", "does not exist"]) {
            try await fixture.client.define(Self.task(rateLimits: [.static("missing")]))
        }
        await expectSluiceError(.invalidOption, containing: ["units 3", "limit of 2", "'small'"]) {
            try await fixture.client.define(Self.task(rateLimits: [.static("small", units: 3)]))
        }
        await expectSluiceError(.invalidOption, containing: ["'nowhere'", "does not exist"]) {
            try await fixture.client.pauseRateLimit("nowhere", for: .seconds(30))
        }
        await expectSluiceError(.invalidOption, containing: ["'nowhere'", "does not exist"]) {
            try await fixture.client.resumeRateLimit("nowhere")
        }
        #expect(try await fixture.client.deleteRateLimit("nowhere") == false)

        // A run without a value at the key's path cannot be enqueued.
        let keyed = Self.task(concurrency: [.perKey("$.account", max: 1)])
        try await fixture.client.define(keyed)
        await expectSluiceError(.invalidPayload, containing: ["$.account", "matches nothing"]) {
            _ = try await fixture.client.enqueue(keyed, FlowInput(key: "a"))
        }
        await fixture.close()
    }

    @Test func badRateLimitCallsRejected() async throws {
        let fixture = try await FlowFixture.make()
        await expectSluiceError(.invalidOption, containing: ["rate limit for key \"api\"", ": 0"]) {
            try await fixture.client.setRateLimit("api", limit: 0, per: .second)
        }
        await expectSluiceError(.invalidOption, containing: ["\"$.api\""]) {
            try await fixture.client.setRateLimit("$.api", limit: 5, per: .second)
        }
        await expectSluiceError(.invalidOption, containing: ["pause duration", "\"api\""]) {
            try await fixture.client.pauseRateLimit("api", for: .zero)
        }
        #expect(try await fixture.client.rateLimits().isEmpty)
        await fixture.close()
    }

    @Test func rateLimitAdminCalls() async throws {
        let fixture = try await FlowFixture.make()
        try await fixture.client.setRateLimit("api", limit: 5, per: .minute)
        var limits = try await fixture.client.rateLimits()
        #expect(limits.count == 1)
        #expect(limits.first?.key == "api")
        #expect(limits.first?.limit == 5)
        #expect(limits.first?.namedPeriod == .minute)
        #expect(limits.first?.isPerKey == false)
        #expect(limits.first?.availableUnits == 5)
        #expect(limits.first?.pausedUntil == nil)

        try await fixture.client.pauseRateLimit("api", for: .seconds(30))
        limits = try await fixture.client.rateLimits()
        let pausedUntil = try #require(limits.first?.pausedUntil)
        #expect(pausedUntil.timeIntervalSinceNow > 20)
        try await fixture.client.resumeRateLimit("api")
        #expect(try await fixture.client.rateLimits().first?.pausedUntil == nil)

        #expect(try await fixture.client.deleteRateLimit("api"))
        #expect(try await fixture.client.rateLimits().isEmpty)
        await fixture.close()
    }
}
