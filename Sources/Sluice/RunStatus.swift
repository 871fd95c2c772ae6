/// The state of a run, as in the `sluice.run_status` enum.
public enum RunStatus: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Waiting for its time: a delayed start or a retry backoff.
    case scheduled
    /// Waiting for a worker.
    case queued
    /// An attempt is executing.
    case running
    /// Final: the last attempt returned an output.
    case succeeded
    /// Final: the last attempt failed, or a non-retryable error was thrown.
    case failed
    /// Final: cancelled before it finished.
    case cancelled
    /// Final: decided not to execute.
    case skipped

    /// Whether the run will not change state again.
    public var isFinal: Bool {
        switch self {
        case .scheduled, .queued, .running: false
        case .succeeded, .failed, .cancelled, .skipped: true
        }
    }

    public var description: String { rawValue }

    /// Parses the database's text, throwing for a state this library does not know.
    init(databaseText text: String) throws {
        guard let status = RunStatus(rawValue: text) else {
            throw SluiceError(
                code: .database,
                message: "unknown run status \"\(text)\"; the extension is newer than this library")
        }
        self = status
    }
}
