/// How many times a run is attempted and how long it waits between attempts.
///
/// The delay before retry `n + 1`, after attempt `n` failed, is `base * factor^(n - 1)`, capped at
/// `max` and spread by up to `jitter` (a fraction) either way. The database computes it with
/// `sluice.retry_delay`, so these values map one to one onto `sluice.define_task`.
public struct RetryPolicy: Sendable, Hashable {
    /// The total number of attempts, 1 to 10000; 1 means no retry.
    public var maxAttempts: Int
    /// The delay after the first failed attempt, 0 to 1 day.
    public var base: Duration
    /// The multiplier between consecutive delays, 1 to 100.
    public var factor: Double
    /// The cap on any single delay, from `base` to 30 days.
    public var max: Duration
    /// The random spread as a fraction of the delay, 0 to 1.
    public var jitter: Double

    /// Creates a policy with exponential backoff.
    ///
    /// - Parameters:
    ///   - maxAttempts: total attempts, 1 to 10000; default 3.
    ///   - base: the first delay, 0 to 1 day; default 1 s.
    ///   - factor: the multiplier between delays, 1 to 100; default 2.
    ///   - max: the cap on a delay, `base` to 30 days; default 600 s.
    ///   - jitter: the random spread, 0 to 1; default 0.1.
    public static func exponential(
        maxAttempts: Int = 3, base: Duration = .seconds(1), factor: Double = 2,
        max: Duration = .seconds(600), jitter: Double = 0.1
    ) -> RetryPolicy {
        RetryPolicy(maxAttempts: maxAttempts, base: base, factor: factor, max: max, jitter: jitter)
    }

    /// Retries up to `maxAttempts` attempts in total with the same `delay` between them and no
    /// jitter.
    public static func fixed(maxAttempts: Int, delay: Duration) -> RetryPolicy {
        RetryPolicy(maxAttempts: maxAttempts, base: delay, factor: 1, max: delay, jitter: 0)
    }

    /// One attempt only: a failure fails the run.
    public static let none = RetryPolicy(maxAttempts: 1, base: .zero, factor: 1, max: .zero, jitter: 0)

    /// The database's default: 3 attempts, 1 s doubling up to 600 s, jitter 0.1.
    public static let `default` = RetryPolicy.exponential()

    /// Throws `SluiceError` with code `SL004` naming the first value outside its allowed range.
    func validate() throws {
        try Validation.check("retries.maxAttempts", maxAttempts, in: 1...10000)
        try Validation.check("retries.base", base, in: .zero ... .seconds(86_400))
        try Validation.check("retries.factor", factor, in: 1...100)
        try Validation.check("retries.max", max, in: base ... .seconds(30 * 86_400))
        try Validation.check("retries.jitter", jitter, in: 0...1)
    }
}
