/// An error that fails the attempt's run at once, without the retries left in its policy.
///
/// Conform your own error types to it, or wrap any error with `.nonRetryable(error)`:
///
/// ```swift
/// throw .nonRetryable(ValidationError.unknownCustomer)
/// ```
public protocol NonRetryableError: Error {}

/// Wraps another error so that the run fails without further retries.
public struct NonRetryable: NonRetryableError, CustomStringConvertible {
    /// The wrapped error; its description is the message stored for the attempt.
    public let underlying: any Error

    /// Wraps `underlying`.
    public init(_ underlying: any Error) {
        self.underlying = underlying
    }

    public var description: String {
        String(describing: underlying)
    }
}

extension Error where Self == NonRetryable {
    /// Wraps `error` so that the run fails without further retries.
    public static func nonRetryable(_ error: any Error) -> NonRetryable {
        NonRetryable(error)
    }
}
