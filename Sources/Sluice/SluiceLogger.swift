/// The severity of a log event, from least to most severe.
public enum LogLevel: Int, Comparable, Sendable, CustomStringConvertible {
    /// Detail for debugging, such as each successful run.
    case debug
    /// Normal lifecycle events: start, stop, retries.
    case info
    /// Something went wrong and was handled, such as a failed attempt or a lost lease.
    case warning
    /// An error that needs attention, such as a database call that failed.
    case error

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    public var description: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }
}

/// A destination for the structured log events of the client, the worker and task handlers.
///
/// The library logs through this protocol only, so applications decide where events go.
/// Implementations must be safe to call from any thread.
public protocol SluiceLogger: Sendable {
    /// Records one event: a short message and metadata such as `run_id` and `task`.
    func log(level: LogLevel, message: String, metadata: [String: String])

    /// Returns whether events at `level` are recorded. The convenience methods below build an
    /// event's metadata only when this returns true. The default implementation returns true.
    func isEnabled(_ level: LogLevel) -> Bool
}

extension SluiceLogger {
    public func isEnabled(_ level: LogLevel) -> Bool {
        true
    }

    /// Records a debug event. The worker logs two for every run, so the metadata is built only
    /// when debug events are recorded.
    public func debug(_ message: String, _ metadata: @autoclosure () -> [String: String] = [:]) {
        logIfEnabled(.debug, message, metadata)
    }

    /// Records an info event.
    public func info(_ message: String, _ metadata: @autoclosure () -> [String: String] = [:]) {
        logIfEnabled(.info, message, metadata)
    }

    /// Records a warning event.
    public func warning(_ message: String, _ metadata: @autoclosure () -> [String: String] = [:]) {
        logIfEnabled(.warning, message, metadata)
    }

    /// Records an error event.
    public func error(_ message: String, _ metadata: @autoclosure () -> [String: String] = [:]) {
        logIfEnabled(.error, message, metadata)
    }

    private func logIfEnabled(_ level: LogLevel, _ message: String, _ metadata: () -> [String: String]) {
        if isEnabled(level) {
            log(level: level, message: message, metadata: metadata())
        }
    }
}

/// A logger that discards every event; the default for the client and the worker.
public struct NoOpLogger: SluiceLogger {
    /// Creates a logger that discards every event.
    public init() {}

    public func log(level: LogLevel, message: String, metadata: [String: String]) {}

    public func isEnabled(_ level: LogLevel) -> Bool {
        false
    }
}
