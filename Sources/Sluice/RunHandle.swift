import Foundation
import SluicePostgres

/// A run of a task with output type `Output`: its id, and ways to await, inspect and cancel it.
public struct RunHandle<Output: Codable & Sendable>: Sendable, Hashable {
    /// The run's id.
    public let id: Int64

    let client: SluiceClient

    init(id: Int64, client: SluiceClient) {
        self.id = id
        self.client = client
    }

    /// Waits until the run reaches a final state and returns its decoded output.
    ///
    /// Listens on `sluice_finished` and requests a notification with `sluice.watch_run`, then
    /// waits without polling. The status is read again after each notification for this run and
    /// after each reconnect of the listener.
    ///
    /// - Parameter timeout: how long to wait; nil (default) waits without limit.
    /// - Throws: `SluiceError` with code `run_failed`, `run_cancelled` or `run_skipped` carrying
    ///   the stored error message; `timed_out` when `timeout` passes first; `encoding` when the
    ///   output does not decode as `Output`; `SL003` for an unknown run.
    public func result(timeout: Duration? = nil) async throws -> Output {
        let info = try await client.waitUntilFinished(runID: id, timeout: timeout)
        return try Self.output(of: info)
    }

    /// Returns the run's current state.
    public func status() async throws -> RunStatus {
        try await client.runInfo(id).status
    }

    /// Returns a snapshot of the run's row.
    public func info() async throws -> RunInfo {
        try await client.runInfo(id)
    }

    /// Cancels the run unless it already finished; a running attempt's handler is cancelled.
    /// Returns false when the run had already finished. Throws as `SluiceClient.cancel` does.
    @discardableResult
    public func cancel(reason: String? = nil) async throws -> Bool {
        try await client.cancel(runID: id, reason: reason)
    }

    public static func == (lhs: RunHandle, rhs: RunHandle) -> Bool {
        lhs.id == rhs.id && lhs.client === rhs.client
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
    }

    /// Decodes the output of a finished run, or throws the error of a run that did not succeed.
    static func output(of info: RunInfo) throws -> Output {
        switch info.status {
        case .succeeded:
            let text = info.output?.text ?? "{}"
            do {
                return try JSONDecoder().decode(Output.self, from: Data(text.utf8))
            } catch {
                throw SluiceError(
                    code: .encoding, message: "the output of run \(info.id) does not decode as \(Output.self)",
                    detail: "\(error)", runID: info.id)
            }
        case .failed:
            throw SluiceError(
                code: .runFailed,
                message: "run \(info.id) of task \(info.task) failed after attempt \(info.attempt) of "
                    + "\(info.maxAttempts): \(info.errorMessage ?? "no error message stored")",
                runID: info.id)
        case .cancelled:
            throw SluiceError(
                code: .runCancelled,
                message: "run \(info.id) of task \(info.task) was cancelled: \(info.errorMessage ?? "no reason given")",
                runID: info.id)
        case .skipped:
            throw SluiceError(code: .runSkipped, message: "run \(info.id) of task \(info.task) was skipped", runID: info.id)
        case .scheduled, .queued, .running:
            preconditionFailure("output(of:) is called only for final states")
        }
    }
}
