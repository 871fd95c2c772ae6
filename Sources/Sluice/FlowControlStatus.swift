import Foundation

/// One row of `sluice.rate_limit_status`: a rate limit bucket and the runs waiting on it.
public struct RateLimitStatus: Sendable, Hashable {
    /// The limit's name, or the key value of a per-key limit.
    public var key: String
    /// The bucket size: units per period.
    public var limit: Int
    /// The refill period's length; a bucket refills continuously at `limit` per period.
    public var period: Duration
    /// The named period when `period` is one second, minute, hour or day.
    public var namedPeriod: RateLimitPeriod? {
        RateLimitPeriod.allCases.first { $0.duration == period }
    }
    /// True for a bucket created by a per-key rule, false for a static limit.
    public var isPerKey: Bool
    /// The units available now, possibly fractional because the bucket refills continuously.
    public var availableUnits: Double
    /// When the next unit refills, or nil when the bucket is full.
    public var nextRefillAt: Date?
    /// The runs waiting for units of this bucket.
    public var waiting: Int
    /// When a pause ends, or nil when the limit is not paused. A past time means no pause.
    public var pausedUntil: Date?
}

/// One row of `sluice.concurrency_status`: a concurrency rule's key value and its runs.
public struct ConcurrencyStatus: Sendable, Hashable {
    /// The task whose rule this is.
    public var task: String
    /// The rule's position in the task's `concurrency` list, from 0.
    public var rule: Int
    /// The key value, such as the user id the rule's path selected.
    public var key: String
    /// The rule's maximum of runs running at once.
    public var maxRunning: Int
    /// The runs of this key running now.
    public var running: Int
    /// The runs of this key waiting for a slot.
    public var waiting: Int
}
