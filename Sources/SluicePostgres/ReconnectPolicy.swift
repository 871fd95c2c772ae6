/// How often and how long to retry a lost connection: capped exponential backoff.
///
/// The delay before retry `n` (1-based) is `initialDelay * factor^(n-1)`, capped at
/// `maximumDelay`.
public struct ReconnectPolicy: Sendable, Hashable {
    /// The delay before the first retry; default 50 ms.
    public var initialDelay: Duration
    /// The cap on any single delay; default 2 s.
    public var maximumDelay: Duration
    /// The multiplier between consecutive delays; default 2. Values below 1 are treated as 1.
    public var factor: Double
    /// The number of failed attempts after which to give up, or nil to retry forever; default 6.
    public var maximumAttempts: Int?

    /// Creates a policy; see the properties for the defaults.
    public init(
        initialDelay: Duration = .milliseconds(50), maximumDelay: Duration = .seconds(2),
        factor: Double = 2, maximumAttempts: Int? = 6
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.factor = factor
        self.maximumAttempts = maximumAttempts
    }

    /// The defaults: 50 ms doubling up to 2 s, giving up after 6 failed attempts (about 1.6 s).
    public static let `default` = ReconnectPolicy()

    /// Returns the delay after `failedAttempts` consecutive failures (1 for the first failure).
    /// Never overflows: large attempt counts return `maximumDelay`.
    public func delay(afterFailedAttempts failedAttempts: Int) -> Duration {
        let initial = Self.seconds(initialDelay)
        let maximum = Self.seconds(maximumDelay)
        guard failedAttempts > 0, initial > 0 else {
            return .zero
        }
        let exponent = Double(failedAttempts - 1)
        let uncapped = initial * Double.pow(Swift.max(factor, 1), exponent)
        guard uncapped.isFinite, uncapped < maximum else {
            return maximumDelay
        }
        return .seconds(uncapped)
    }

    static func seconds(_ duration: Duration) -> Double {
        let components = duration.components
        return Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

extension Double {
    fileprivate static func pow(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var remaining = exponent
        // Stop once the value is infinite, so huge attempt counts cost nothing.
        while remaining >= 1, result.isFinite {
            result *= base
            remaining -= 1
        }
        return result
    }
}
