import Foundation
import SluicePostgres

/// The options of a task, mapped one to one onto the arguments of `sluice.define_task`.
public struct TaskOptions: Sendable, Hashable {
    /// The queue the task's runs wait in; a name like the task's. Default `"default"`.
    public var queue: String
    /// Attempts and backoff; default `.default` (3 attempts, 1 s doubling up to 600 s).
    public var retries: RetryPolicy
    /// The execution timeout of each attempt, 1 s to 30 days; default 300 s.
    public var timeout: Duration
    /// How long a run may wait in the queue before its first start, 1 s to 365 days, or nil
    /// for no limit (the default).
    public var scheduleTimeout: Duration?
    /// The default priority of runs, 0 to 9, higher first; default 0.
    public var priority: Int
    /// Limits on the runs running at once per key; default none.
    public var concurrency: [ConcurrencyRule]
    /// Rate limits each run takes units from when it starts; default none.
    public var rateLimits: [RateLimitRule]
    /// Requirements and preferences over worker labels; default none.
    public var affinity: [AffinityRule]
    /// The worker slots one run occupies, 1 to 100000; default 1.
    public var slotCost: Int

    /// Creates options; see the properties for the defaults and ranges.
    public init(
        queue: String = "default", retries: RetryPolicy = .default, timeout: Duration = .seconds(300),
        scheduleTimeout: Duration? = nil, priority: Int = 0, concurrency: [ConcurrencyRule] = [],
        rateLimits: [RateLimitRule] = [], affinity: [AffinityRule] = [], slotCost: Int = 1
    ) {
        self.queue = queue
        self.retries = retries
        self.timeout = timeout
        self.scheduleTimeout = scheduleTimeout
        self.priority = priority
        self.concurrency = concurrency
        self.rateLimits = rateLimits
        self.affinity = affinity
        self.slotCost = slotCost
    }

    /// Throws `SluiceError` with code `SL004` naming the first invalid option.
    func validate() throws {
        try Validation.checkName("queue name", queue)
        try retries.validate()
        try Validation.check("timeout", timeout, in: .seconds(1) ... .seconds(30 * 86_400))
        if let scheduleTimeout {
            try Validation.check("scheduleTimeout", scheduleTimeout, in: .seconds(1) ... .seconds(365 * 86_400))
        }
        try Validation.check("priority", priority, in: 0...9)
        try FlowValidation.checkInteger("slotCost", slotCost, in: 1...100_000)
        for rule in concurrency {
            try rule.validate()
        }
        for rule in rateLimits {
            try rule.validate()
        }
        for rule in affinity {
            try rule.validate()
        }
    }

    /// Encodes the flow-control rules as the JSON arrays `sluice.define_task` takes. Keys are
    /// sorted, so an unchanged declaration sends the same text.
    func flowControlJSON() throws -> (concurrency: PostgresJSON, rateLimits: PostgresJSON, affinity: PostgresJSON) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (
            try PostgresJSON(encoding: concurrency, encoder: encoder),
            try PostgresJSON(encoding: rateLimits, encoder: encoder),
            try PostgresJSON(encoding: affinity, encoder: encoder)
        )
    }
}
