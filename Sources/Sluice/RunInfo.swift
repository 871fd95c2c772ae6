import Foundation
import SluicePostgres

/// A snapshot of one run's row in `sluice.runs`.
public struct RunInfo: Sendable {
    /// The run's id.
    public var id: Int64
    /// The task name.
    public var task: String
    /// The queue the run waits in.
    public var queue: String
    /// The current state.
    public var status: RunStatus
    /// The number of the latest attempt, 0 before the first start.
    public var attempt: Int
    /// The total number of attempts the run may take.
    public var maxAttempts: Int
    /// The priority, 0 to 9.
    public var priority: Int
    /// When the run was enqueued, by the database clock.
    public var createdAt: Date
    /// When the run may start next.
    public var runAt: Date
    /// When the latest attempt started, or nil before the first start.
    public var startedAt: Date?
    /// When the run reached a final state, or nil before.
    public var finishedAt: Date?
    /// The input object.
    public var input: PostgresJSON
    /// The metadata object.
    public var metadata: PostgresJSON
    /// The output of a succeeded run.
    public var output: PostgresJSON?
    /// The error document of the latest failed attempt or of a cancel: `{"message": ..., "kind": ...}`.
    public var error: PostgresJSON?

    /// The `message` field of `error`, when there is one.
    public var errorMessage: String? {
        guard let error, let document = try? error.decode([String: JSONValueText].self) else {
            return nil
        }
        return document["message"]?.text
    }
}

/// A JSON value decoded only when it is a string; other kinds decode as nil text.
struct JSONValueText: Decodable {
    var text: String?

    init(from decoder: any Decoder) throws {
        text = try? decoder.singleValueContainer().decode(String.self)
    }
}
