import Foundation
import SluicePostgres

/// The floor in plain SQL: single-row and batched inserts, then claim and completion with the
/// same connection counts and batch sizes as the Sluice scenarios.
enum FloorScenario {
    static let insertBatchSize = 100

    static func run(_ context: ScenarioContext) async throws {
        let report = context.report
        for connections in [1, 4] {
            try await context.database.reset()
            let single = try await context.measureRate(connections: connections, seconds: context.measureSeconds) {
                connection, call in
                _ = try await connection.queryCached(
                    "INSERT INTO bench_floor.jobs (input) VALUES ($1) RETURNING id", [PostgresJSON("{\"seq\":\(call)}")])
                return 1
            }
            report.add(.floor, "insert 1 per transaction, \(connections) conn", single, "rows/s")

            try await context.database.reset()
            let inputs = BenchInput.inputs(0..<insertBatchSize)
            let batched = try await context.measureRate(connections: connections, seconds: context.measureSeconds) {
                connection, _ in
                try await connection.queryCached(
                    "INSERT INTO bench_floor.jobs (input) SELECT unnest($1::jsonb[]) RETURNING id", [inputs]
                ).count
            }
            report.add(.floor, "insert batch \(insertBatchSize), \(connections) conn", batched, "rows/s")
        }

        for config in DrainConfig.all {
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
            report.add(.floor, config.floorLabel, Double(stats.completed) / elapsed, "runs/s",
                       note: "\(stats.completed) runs")
        }
    }
}
