import Foundation
import SluicePostgres

/// Enqueue rates through `sluice.enqueue` (one run per transaction) and `sluice.enqueue_many`,
/// compared with the floor's inserts.
enum EnqueueScenario {
    static func run(_ context: ScenarioContext) async throws {
        let report = context.report
        let batchSize = FloorScenario.insertBatchSize
        for connections in [1, 4] {
            try await context.database.reset()
            let single = try await context.measureRate(connections: connections, seconds: context.measureSeconds) {
                connection, call in
                _ = try await connection.queryCached(
                    "SELECT sluice.enqueue($1, $2)", [BenchDatabase.taskName, PostgresJSON("{\"seq\":\(call)}")])
                return 1
            }
            report.add(.enqueue, "enqueue 1 per transaction, \(connections) conn", single, "runs/s")
            report.checkRatio(
                "enqueue single, \(connections) conn vs floor insert", measured: single,
                reference: report.value(.floor, "insert 1 per transaction, \(connections) conn"), minimum: 0.75)

            try await context.database.reset()
            let inputs = BenchInput.inputs(0..<batchSize)
            let batched = try await context.measureRate(connections: connections, seconds: context.measureSeconds) {
                connection, _ in
                let rows = try await connection.queryCached(
                    "SELECT cardinality(sluice.enqueue_many($1, $2::jsonb[]))", [BenchDatabase.taskName, inputs])
                return try rows[0].decode(Int.self, at: 0)
            }
            report.add(.enqueue, "enqueue_many batch \(batchSize), \(connections) conn", batched, "runs/s")
            report.checkRatio(
                "enqueue_many, \(connections) conn vs floor batched insert", measured: batched,
                reference: report.value(.floor, "insert batch \(batchSize), \(connections) conn"), minimum: 0.5)
        }
    }
}
