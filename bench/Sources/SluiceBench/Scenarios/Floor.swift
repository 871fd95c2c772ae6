import Foundation
import SluicePostgres

/// The floor in plain SQL: the least work a durable queue with history does for a no-op task.
///
/// Inserts one row per transaction or `insertBatchSize` per statement, and drains a backlog by
/// deleting jobs with `FOR UPDATE SKIP LOCKED` and inserting their completions, with the same
/// connection counts and batch sizes as the Sluice measurements. The enqueue and end-to-end
/// scenarios measure each floor figure in rounds alternating with the Sluice figure it is
/// compared with (`ScenarioContext.measurePaired`).
enum Floor {
    static let insertBatchSize = 100

    /// Inserts on `connections` connections for `seconds` and returns rows per second: one row
    /// per transaction, or `insertBatchSize` rows per statement when `batched`.
    static func insertRate(_ context: ScenarioContext, connections: Int, batched: Bool, seconds: Double) async throws
        -> Double
    {
        try await context.database.reset()
        if !batched {
            return try await context.measureRate(connections: connections, seconds: seconds) { connection, call in
                _ = try await connection.queryCached(
                    "INSERT INTO bench_floor.jobs (input) VALUES ($1) RETURNING id", [PostgresJSON("{\"seq\":\(call)}")])
                return 1
            }
        }
        let inputs = BenchInput.inputs(0..<insertBatchSize)
        return try await context.measureRate(connections: connections, seconds: seconds) { connection, _ in
            try await connection.queryCached(
                "INSERT INTO bench_floor.jobs (input) SELECT unnest($1::jsonb[]) RETURNING id", [inputs]
            ).count
        }
    }

    /// Returns the figure name of an insert rate, such as `insert batch 100, 4 conn`.
    static func insertLabel(connections: Int, batched: Bool) -> String {
        (batched ? "insert batch \(insertBatchSize)" : "insert 1 per transaction") + ", \(connections) conn"
    }

    /// Drains a backlog of `context.drainBacklog` jobs with the connection count and batch size
    /// of `config`, and returns the jobs completed and the seconds the drain took.
    static func drain(_ context: ScenarioContext, _ config: DrainConfig) async throws -> (completed: Int, seconds: Double) {
        try await context.database.reset()
        try await context.insertFloorBacklog(context.drainBacklog)
        var connections: [PostgresConnection] = []
        for index in 0..<config.connections {
            connections.append(try await context.database.connect("floor \(index)"))
        }
        let steps: [DrainStep] = connections.map { FloorStep(connection: $0, batchSize: config.batchSize) }
        let (stats, elapsed) = try await context.drain(steps, seconds: context.drainSeconds)
        for connection in connections {
            await connection.close()
        }
        return (stats.completed, elapsed)
    }
}
