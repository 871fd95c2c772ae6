import Foundation
import SluicePostgres

/// The facts about the attempt a handler executes: run id, attempt, metadata and deadline.
///
/// Cancellation arrives as Swift task cancellation: check `Task.isCancelled` or call
/// `try Task.checkCancellation()` in long loops, and read `cancellationReason` to learn why.
public struct TaskContext: Sendable {
    /// The run's id.
    public let runID: Int64
    /// The task's name.
    public let taskName: String
    /// The number of this attempt, counting from 1.
    public let attempt: Int
    /// The total number of attempts the run may take.
    public let maxAttempts: Int
    /// The run's metadata, a JSON object as text.
    public let metadata: PostgresJSON
    /// The execution deadline of this attempt, by the database clock.
    public let deadline: Date

    let logger: any SluiceLogger
    let cancellation: CancellationBox

    init(
        runID: Int64, taskName: String, attempt: Int, maxAttempts: Int, metadata: PostgresJSON, deadline: Date,
        logger: any SluiceLogger, cancellation: CancellationBox = CancellationBox()
    ) {
        self.runID = runID
        self.taskName = taskName
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.metadata = metadata
        self.deadline = deadline
        self.logger = logger
        self.cancellation = cancellation
    }

    /// Whether this is the last attempt the run may take.
    public var isLastAttempt: Bool { attempt >= maxAttempts }

    /// The reason the worker cancelled this attempt, or nil while it has not.
    public var cancellationReason: CancellationReason? { cancellation.reason }

    /// Decodes the metadata object into `type`.
    public func metadata<Value: Decodable>(as type: Value.Type) throws -> Value {
        try metadata.decode(type)
    }

    /// Writes `message` to the worker's logger at `level` (default `.info`), with the run id, the
    /// task name and the attempt as metadata.
    public func log(_ message: String, level: LogLevel = .info) {
        logger.log(
            level: level, message: message,
            metadata: ["run_id": String(runID), "task": taskName, "attempt": String(attempt)])
    }
}

/// The reason a handler was cancelled, set by the worker before it cancels the Swift task.
final class CancellationBox: @unchecked Sendable {
    // @unchecked: `storedReason` is guarded by `lock`.
    private let lock = NSLock()
    private var storedReason: CancellationReason?

    var reason: CancellationReason? {
        lock.lock()
        defer { lock.unlock() }
        return storedReason
    }

    /// Records `reason` unless an earlier reason was recorded; returns whether it was recorded.
    @discardableResult
    func record(_ reason: CancellationReason) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if storedReason != nil {
            return false
        }
        storedReason = reason
        return true
    }
}
