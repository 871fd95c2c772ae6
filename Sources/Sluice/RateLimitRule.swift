/// The period of a rate limit. A bucket contains at most its limit and refills continuously at
/// limit per period.
public enum RateLimitPeriod: String, Sendable, Hashable, Codable, CaseIterable {
    case second, minute, hour, day

    /// The period's length.
    public var duration: Duration {
        switch self {
        case .second: return .seconds(1)
        case .minute: return .seconds(60)
        case .hour: return .seconds(3600)
        case .day: return .seconds(86_400)
        }
    }
}

/// How many units of a rate limit one run takes: a fixed number, or a whole number read from
/// the input. An integer literal means `.fixed`.
public enum RateLimitUnits: Sendable, Hashable, Encodable, ExpressibleByIntegerLiteral {
    /// The same number of units for every run, 1 to the limit.
    case fixed(Int)
    /// The units at an SQL/JSON path over the input, such as `$.cost`. Enqueueing a run fails
    /// with `SL002` when its value is missing or not a whole number from 1 to the limit.
    case fromInput(String)

    public init(integerLiteral value: Int) {
        self = .fixed(value)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .fixed(let units):
            try container.encode(units)
        case .fromInput(let path):
            try container.encode(path)
        }
    }
}

/// A rate limit that runs of a task take units from when they start. A run that finds too few
/// units waits until its bucket refills.
///
/// Maps onto one element of `sluice.define_task(rate_limits => ...)`: `{"key", "units"}` for a
/// static limit and `{"key", "limit", "period", "units"}` for a per-key one.
///
/// ```swift
/// Sluice.task("summarize", rateLimits: [
///     .static("openai"),
///     .perKey("$.account", limit: 100, per: .minute, units: .fromInput("$.cost")),
/// ]) { ... }
/// ```
public struct RateLimitRule: Sendable, Hashable, Encodable {
    /// The bucket: a static limit's name, or an SQL/JSON path over the input whose value names
    /// a bucket per key.
    public var key: String
    /// The bucket size of a per-key limit, 1 to 1000000000; nil for a static limit, whose size
    /// is set with `SluiceClient.setRateLimit`.
    public var limit: Int?
    /// The refill period of a per-key limit; nil for a static limit.
    public var period: RateLimitPeriod?
    /// The units one run takes; default 1.
    public var units: RateLimitUnits

    /// Uses the static limit `name`, created beforehand with `SluiceClient.setRateLimit` (or
    /// `sluice.set_rate_limit`); defining the task fails with `SL004` when it does not exist.
    ///
    /// - Parameters:
    ///   - name: the limit's name; it does not start with `$`.
    ///   - units: units per run, 1 to the limit; default 1.
    public static func `static`(_ name: String, units: RateLimitUnits = 1) -> RateLimitRule {
        RateLimitRule(key: name, limit: nil, period: nil, units: units)
    }

    /// Limits each value of `path`, an SQL/JSON path over the input, to `limit` units per
    /// `period`. The bucket of a value is created full on its first run.
    ///
    /// - Parameters:
    ///   - path: the key path; it starts with `$`.
    ///   - limit: the bucket size, 1 to 1000000000.
    ///   - period: the refill period.
    ///   - units: units per run, 1 to `limit`; default 1.
    public static func perKey(
        _ path: String, limit: Int, per period: RateLimitPeriod, units: RateLimitUnits = 1
    ) -> RateLimitRule {
        RateLimitRule(key: path, limit: limit, period: period, units: units)
    }

    private enum CodingKeys: String, CodingKey {
        case key, limit, period, units
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encodeIfPresent(limit, forKey: .limit)
        try container.encodeIfPresent(period, forKey: .period)
        try container.encode(units, forKey: .units)
    }

    /// Throws `SluiceError` with code `SL004` naming the invalid value.
    func validate() throws {
        if let limit {
            try FlowValidation.checkKey("rate limit key", key, requiresPath: true)
            try FlowValidation.checkInteger("rate limit for key \"\(key)\"", limit, in: 1...1_000_000_000)
        } else {
            try FlowValidation.checkStaticName(key)
        }
        switch units {
        case .fixed(let count):
            try FlowValidation.checkInteger("rate limit units for key \"\(key)\"", count, in: 1...1_000_000_000)
            if let limit, count > limit {
                throw SluiceError(
                    code: .invalidOption,
                    message: "invalid rate limit units for key \"\(key)\": \(count) exceed the limit of \(limit); "
                        + "a run that takes more units than the bucket holds could never start")
            }
        case .fromInput(let path):
            try FlowValidation.checkKey("rate limit units path", path, requiresPath: true)
        }
    }
}
