/// The retry state of one reconnect sequence, driven by a `ReconnectPolicy`.
///
/// A value type with no I/O: the caller reports each failure and gets back what to do next.
public struct ReconnectBackoff: Sendable, Hashable {
    /// The next step after a failed attempt.
    public enum Decision: Sendable, Hashable {
        /// Wait for the delay, then try again.
        case retry(after: Duration)
        /// Stop retrying; the policy's `maximumAttempts` is reached.
        case giveUp
    }

    /// The policy that sets the delays and the attempt limit.
    public let policy: ReconnectPolicy
    /// The number of consecutive failed attempts so far.
    public private(set) var failedAttempts = 0

    /// Creates the state for a new reconnect sequence.
    public init(policy: ReconnectPolicy) {
        self.policy = policy
    }

    /// Records a failed attempt and returns whether and when to retry.
    public mutating func recordFailure() -> Decision {
        if failedAttempts < Int.max {
            failedAttempts += 1
        }
        if let maximumAttempts = policy.maximumAttempts, failedAttempts >= maximumAttempts {
            return .giveUp
        }
        return .retry(after: policy.delay(afterFailedAttempts: failedAttempts))
    }

    /// Records a successful attempt; the next failure starts again at the initial delay.
    public mutating func recordSuccess() {
        failedAttempts = 0
    }
}
