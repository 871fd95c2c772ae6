import Foundation

/// Attempts whose handlers returned or threw and that the worker's event loop has not taken yet.
///
/// Handlers finish on many threads at once. When each sent its own event, the loop was resumed
/// for every run, a thread wake-up each time. A handler now appends its attempt here. Only the
/// handler that finds the list empty sends `WorkerEvent.attemptsFinished`, and the loop then
/// takes every attempt appended by the time it handles that event.
final class FinishedAttempts: @unchecked Sendable {
    // @unchecked: `attempts` is guarded by `lock`.
    struct Attempt: Sendable, Equatable {
        var runID: Int64
        var attempt: Int
        var outcome: WorkerState.Outcome
    }

    private let lock = NSLock()
    private var attempts: [Attempt] = []

    /// Appends `attempt`. Returns true when the list was empty, so that the caller sends
    /// `WorkerEvent.attemptsFinished`.
    func append(_ attempt: Attempt) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        attempts.append(attempt)
        return attempts.count == 1
    }

    /// Returns the attempts appended since the last call, in the order they were appended, and
    /// empties the list.
    func takeAll() -> [Attempt] {
        lock.lock()
        defer { lock.unlock() }
        let appended = attempts
        attempts.removeAll(keepingCapacity: true)
        return appended
    }
}
