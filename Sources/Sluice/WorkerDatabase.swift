import Foundation
import SluicePostgres

/// The SQL calls of a worker, on its own connection.
struct WorkerDatabase: Sendable {
    let connection: PostgresConnection

    /// The deadline comes as microseconds since 1970 and the time left as microseconds, both
    /// integers. Parsing timestamp text was a twentieth of a busy worker's CPU, and parsing
    /// float8 text a third of the time that decoding the claimed rows took.
    static let claimSQL = claimQuery(calling: "sluice.claim($1, $2)")
    /// `claimSQL` through `sluice.claim_or_wait`, whose third parameter is the maximum wait.
    static let claimOrWaitSQL = claimQuery(calling: "sluice.claim_or_wait($1, $2, $3::interval)")

    /// Returns the query that calls `call` and selects the columns that `claimedRuns` parses.
    private static func claimQuery(calling call: String) -> String {
        """
        SELECT c.run_id, c.task, c.attempt, c.input, c.metadata, (extract(epoch FROM c.deadline) * 1000000)::int8,
               c.max_attempts, (extract(epoch FROM c.deadline - sluice.now()) * 1000000)::int8
        FROM \(call) AS c
        """
    }

    static let completeSQL = "SELECT id FROM sluice.complete($1::bigint[], $2::int[], $3::jsonb[]) AS id"
    static let failSQL = "SELECT run_id, status::text FROM sluice.fail($1::bigint[], $2::int[], $3::text[], $4::bool[])"

    /// Registers a new incarnation and returns its id.
    func register(
        name: String, tasks: [String], slots: Int, queues: [String]?, labels: PostgresJSON,
        leaseTimeout: Duration
    ) async throws -> UUID {
        let rows = try await connection.query(
            """
            SELECT sluice.register_worker($1, $2::text[], $3, $4::text[], $5::jsonb, $6::interval, $7, $8)
            """,
            [
                name, tasks, slots, queues, labels, leaseTimeout.intervalText, ProcessInfo.processInfo.hostName,
                Int(getpid()),
            ])
        return try rows[0].decode(UUID.self, at: 0)
    }

    /// Parses the rows of `claimSQL`.
    static func claimedRuns(_ rows: PostgresRows) throws -> [WorkerState.ClaimedRun] {
        try rows.map { row in
            WorkerState.ClaimedRun(
                runID: try row.decode(Int64.self, at: 0), task: try row.decode(String.self, at: 1),
                attempt: try row.decode(Int.self, at: 2), maxAttempts: try row.decode(Int.self, at: 6),
                input: try row.decode(String.self, at: 3), metadata: try row.decode(String.self, at: 4),
                deadline: Date(timeIntervalSince1970: Double(try row.decode(Int64.self, at: 5)) / 1_000_000),
                timeLeft: .microseconds(max(0, try row.decode(Int64.self, at: 7))))
        }
    }

    /// Builds the statements that send `batch`: one `complete` for the successes and one `fail` for the
    /// failures, each only when it has rows. Returns them with the reports each one carries.
    static func reportStatements(
        _ batch: [WorkerState.Report]
    ) -> [(sql: String, parameters: [(any PostgresEncodable)?], reports: [WorkerState.Report])] {
        var completions: [WorkerState.Report] = []
        var failures: [WorkerState.Report] = []
        var outputs: [PostgresJSON] = []
        var messages: [String] = []
        var retryable: [Bool] = []
        for report in batch {
            switch report.outcome {
            case .succeeded(let output):
                completions.append(report)
                outputs.append(PostgresJSON(output))
            case .failed(let message, let isRetryable):
                failures.append(report)
                messages.append(JSONPayload.escapingNUL(message))
                retryable.append(isRetryable)
            }
        }
        var statements: [(sql: String, parameters: [(any PostgresEncodable)?], reports: [WorkerState.Report])] = []
        if !completions.isEmpty {
            statements.append(
                (completeSQL, [completions.map(\.runID), completions.map(\.attempt), outputs], completions))
        }
        if !failures.isEmpty {
            statements.append(
                (failSQL, [failures.map(\.runID), failures.map(\.attempt), messages, retryable], failures))
        }
        return statements
    }
}
