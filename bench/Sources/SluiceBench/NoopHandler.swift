import Foundation
import SluicePostgres

/// The input every benchmark run carries: a sequence number that the latency scenario uses to
/// find the time the run was enqueued.
struct BenchInput: Codable, Sendable {
    var seq: Int

    /// JSON inputs for sequence numbers `range`.
    static func inputs(_ range: Range<Int>) -> [PostgresJSON] {
        range.map { PostgresJSON("{\"seq\":\($0)}") }
    }
}

/// The no-op task: decodes its input and returns an empty object, which is the work an SDK
/// does around a handler that does nothing.
enum NoopHandler {
    static let output = PostgresJSON("{}")

    /// Runs the handler on `input`, calling `onStart` with the run's sequence number first, and
    /// returns the output and the sequence number.
    static func run(_ input: PostgresJSON, onStart: (@Sendable (Int) -> Void)?) throws -> (PostgresJSON, seq: Int) {
        let decoded = try JSONDecoder().decode(BenchInput.self, from: Data(input.text.utf8))
        onStart?(decoded.seq)
        return (output, decoded.seq)
    }
}
