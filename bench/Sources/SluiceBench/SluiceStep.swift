import Foundation
import SluicePostgres

/// The worker side of the SQL protocol, without the SDK: `sluice.claim` for a batch, the no-op
/// handler on each run, then one `sluice.complete` call for the batch.
///
/// Pipelined, the report of one batch and the claim of the next travel in one round trip
/// (libpq pipeline mode, each statement its own transaction), so a batch costs one round trip
/// instead of two; the runs of the last batch stay held until the next step or `flush()`.
final class SluiceStep: DrainStep, @unchecked Sendable {
    // @unchecked: `held` is used by one drain loop at a time.

    static let claimSQL = "SELECT run_id, attempt, input FROM sluice.claim($1, $2)"
    static let claimOrWaitSQL =
        "SELECT run_id, attempt, input FROM sluice.claim_or_wait($1, $2, pg_catalog.make_interval(secs => $3))"
    static let completeSQL = "SELECT count(*) FROM sluice.complete($1::bigint[], $2::integer[], $3::jsonb[])"

    let connection: PostgresConnection
    let workerID: UUID
    let batchSize: Int
    let pipelined: Bool
    /// When set, claims wait in the server up to this long for runs (`sluice.claim_or_wait`).
    let serverWaitSeconds: Double?
    let onStart: (@Sendable (Int) -> Void)?
    let onComplete: (@Sendable ([Int]) -> Void)?
    private var held: [ClaimedRun] = []

    struct ClaimedRun {
        var runID: Int64
        var attempt: Int32
        var output: PostgresJSON
        var seq: Int
    }

    init(
        connection: PostgresConnection, workerID: UUID, batchSize: Int, pipelined: Bool = false,
        serverWaitSeconds: Double? = nil, onStart: (@Sendable (Int) -> Void)? = nil, onComplete: (@Sendable ([Int]) -> Void)? = nil
    ) {
        self.connection = connection
        self.workerID = workerID
        self.batchSize = batchSize
        self.pipelined = pipelined
        self.serverWaitSeconds = serverWaitSeconds
        self.onStart = onStart
        self.onComplete = onComplete
    }

    func step() async throws -> Int {
        if pipelined {
            return try await pipelinedStep()
        }
        let claimed = try await runHandlers(claim())
        if claimed.isEmpty {
            return 0
        }
        return try await complete(claimed)
    }

    private func claim() async throws -> PostgresRows {
        guard let serverWaitSeconds else {
            return try await connection.queryCached(Self.claimSQL, [workerID, batchSize])
        }
        return try await connection.queryCached(Self.claimOrWaitSQL, [workerID, batchSize, serverWaitSeconds])
    }

    func flush() async throws -> Int {
        let finished = held.isEmpty ? 0 : try await complete(held)
        held = []
        return finished
    }

    private func pipelinedStep() async throws -> Int {
        if held.isEmpty {
            held = try await runHandlers(claim())
            return held.isEmpty ? 0 : try await pipelinedStep()
        }
        let results = try await connection.pipelineResultsCached([
            (sql: Self.completeSQL, parameters: Self.completeParameters(held)),
            (sql: Self.claimSQL, parameters: [workerID, batchSize]),
        ])
        let completed = try Self.acceptedCount(results[0].get(), expected: held.count)
        onComplete?(held.map(\.seq))
        held = try runHandlers(results[1].get())
        return completed
    }

    private func complete(_ runs: [ClaimedRun]) async throws -> Int {
        let rows = try await connection.queryCached(Self.completeSQL, Self.completeParameters(runs))
        let accepted = try Self.acceptedCount(rows, expected: runs.count)
        onComplete?(runs.map(\.seq))
        return accepted
    }

    private func runHandlers(_ rows: PostgresRows) throws -> [ClaimedRun] {
        try rows.map { row in
            let (output, seq) = try NoopHandler.run(try row.decode(PostgresJSON.self, at: 2), onStart: onStart)
            return ClaimedRun(
                runID: try row.decode(Int64.self, at: 0), attempt: try row.decode(Int32.self, at: 1),
                output: output, seq: seq)
        }
    }

    private static func completeParameters(_ runs: [ClaimedRun]) -> [(any PostgresEncodable)?] {
        [runs.map(\.runID), runs.map(\.attempt), runs.map(\.output)]
    }

    /// Returns the number of accepted completions; a rejected one means the benchmark raced
    /// with something that took the run away, which would make the figures wrong.
    private static func acceptedCount(_ rows: PostgresRows, expected: Int) throws -> Int {
        let accepted = try rows[0].decode(Int.self, at: 0)
        guard accepted == expected else {
            throw BenchError.failed("sluice.complete accepted \(accepted) of \(expected) runs")
        }
        return accepted
    }
}

/// The floor's claim and report: in one transaction, delete up to a batch of jobs with
/// `FOR UPDATE SKIP LOCKED`, run the no-op handler, insert the completion rows, commit. Two
/// round trips (BEGIN with the DELETE, then the INSERT with COMMIT, each pipelined) and one
/// commit per batch. The handler starts before anything commits, which no lease-based queue
/// can do, so the floor's start latency is a lower bound.
struct FloorStep: DrainStep {
    static let claimSQL = """
        DELETE FROM bench_floor.jobs WHERE id IN (
            SELECT id FROM bench_floor.jobs ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING id, input, created_at
        """
    static let completeSQL = """
        INSERT INTO bench_floor.completions (id, input, output, created_at)
        SELECT * FROM unnest($1::bigint[], $2::jsonb[], $3::jsonb[], $4::timestamptz[])
        """

    let connection: PostgresConnection
    let batchSize: Int
    var onStart: (@Sendable (Int) -> Void)? = nil
    var onComplete: (@Sendable ([Int]) -> Void)? = nil

    func step() async throws -> Int {
        let claimed = try await connection.pipelineCached([
            (sql: "BEGIN", parameters: []),
            (sql: Self.claimSQL, parameters: [batchSize]),
        ])[1]
        if claimed.isEmpty {
            try await connection.execute("COMMIT")
            return 0
        }
        var ids: [Int64] = []
        var inputs: [PostgresJSON] = []
        var outputs: [PostgresJSON] = []
        var createdAt: [String] = []
        var seqs: [Int] = []
        for row in claimed {
            let input = try row.decode(PostgresJSON.self, at: 1)
            ids.append(try row.decode(Int64.self, at: 0))
            inputs.append(input)
            let (output, seq) = try NoopHandler.run(input, onStart: onStart)
            outputs.append(output)
            seqs.append(seq)
            createdAt.append(try row.decode(String.self, at: 2))
        }
        _ = try await connection.pipelineCached([
            (sql: Self.completeSQL, parameters: [ids, inputs, outputs, createdAt]),
            (sql: "COMMIT", parameters: []),
        ])
        onComplete?(seqs)
        return claimed.count
    }

    func flush() async throws -> Int {
        0
    }
}
