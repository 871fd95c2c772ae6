/// The policy for a new run whose concurrency key already has its maximum of runs.
public enum ConcurrencyStrategy: String, Sendable, Hashable, Codable {
    /// The run waits for a slot of its key, in a line per key, and a finishing run hands its
    /// slot to the next run of its own key. A key with a long backlog never has more than its
    /// maximum of runs ready, so it does not delay other keys. The default.
    case groupRoundRobin = "group_round_robin"
    /// The run is accepted and the oldest live (queued or running) runs of its key are cancelled
    /// until the key is within its maximum.
    case cancelInProgress = "cancel_in_progress"
    /// The run is created cancelled when its key already has its maximum of live (queued or
    /// running) runs.
    case cancelNewest = "cancel_newest"
}

/// A limit on how many runs of a task may run at once for each value of a key.
///
/// Maps onto one element of `sluice.define_task(concurrency => ...)`:
/// `{"key": ..., "max": ..., "strategy": ...}`.
///
/// ```swift
/// Sluice.task("sync", concurrency: [.perKey("$.user_id", max: 1)]) { ... }
/// ```
public struct ConcurrencyRule: Sendable, Hashable, Encodable {
    /// The key: an SQL/JSON path over the input such as `$.user_id` (the run's metadata is the
    /// path variable `$metadata`), or a constant that all runs of the task share.
    public var key: String
    /// The maximum number of runs of one key value running at once, 1 to 100000.
    public var max: Int
    /// The policy for a new run when its key is full; default `.groupRoundRobin`.
    public var strategy: ConcurrencyStrategy

    /// True when the rule was made by `perKey`, whose key must be a path.
    private var requiresPath = false

    /// Creates a rule; `key` is a path starting with `$` or a constant.
    public init(key: String, max: Int, strategy: ConcurrencyStrategy = .groupRoundRobin) {
        self.key = key
        self.max = max
        self.strategy = strategy
    }

    /// Limits the runs per value of `path`, an SQL/JSON path over the input such as `$.user_id`.
    /// Every run of the task needs a value at that path, or enqueueing it fails with `SL002`.
    ///
    /// - Parameters:
    ///   - path: the key path; it starts with `$`.
    ///   - max: runs of one key value running at once, 1 to 100000.
    ///   - strategy: default `.groupRoundRobin`.
    public static func perKey(
        _ path: String, max: Int, strategy: ConcurrencyStrategy = .groupRoundRobin
    ) -> ConcurrencyRule {
        var rule = ConcurrencyRule(key: path, max: max, strategy: strategy)
        rule.requiresPath = true
        return rule
    }

    /// Limits all runs of the task together to `max` at once; `name` is the constant key shown
    /// in `sluice.concurrency_status` (default `"all"`). The strategy defaults to
    /// `.groupRoundRobin`.
    public static func total(
        max: Int, name: String = "all", strategy: ConcurrencyStrategy = .groupRoundRobin
    ) -> ConcurrencyRule {
        ConcurrencyRule(key: name, max: max, strategy: strategy)
    }

    private enum CodingKeys: String, CodingKey {
        case key, max, strategy
    }

    /// Throws `SluiceError` with code `SL004` naming the invalid value.
    func validate() throws {
        try FlowValidation.checkKey("concurrency key", key, requiresPath: requiresPath)
        try FlowValidation.checkInteger("concurrency max for key \"\(key)\"", max, in: 1...100_000)
    }
}
