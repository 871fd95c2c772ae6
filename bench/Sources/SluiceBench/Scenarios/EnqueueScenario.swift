import Foundation
import SluicePostgres

/// Enqueue rates through `sluice.enqueue` (one run per transaction) and `sluice.enqueue_many`,
/// each measured in rounds alternating with the floor's inserts.
enum EnqueueScenario {
    static func run(_ context: ScenarioContext) async throws {
        let report = context.report
        let seconds = context.pairedSeconds
        for connections in [1, 4] {
            let single = try await context.measurePaired(
                floor: { try await Floor.insertRate(context, connections: connections, batched: false, seconds: seconds) },
                sluice: {
                    try await context.database.reset()
                    return try await context.measureRate(connections: connections, seconds: seconds) { connection, call in
                        _ = try await connection.queryCached(
                            "SELECT sluice.enqueue($1, $2)", [BenchDatabase.taskName, PostgresJSON("{\"seq\":\(call)}")])
                        return 1
                    }
                })
            report.addMedian(.floor, Floor.insertLabel(connections: connections, batched: false), single.floor, "rows/s")
            report.addMedian(.enqueue, "enqueue 1 per transaction, \(connections) conn", single.sluice, "runs/s")
            report.checkRatio("enqueue single, \(connections) conn vs floor insert", single, minimum: 0.75)

            let inputs = BenchInput.inputs(0..<Floor.insertBatchSize)
            let batched = try await context.measurePaired(
                floor: { try await Floor.insertRate(context, connections: connections, batched: true, seconds: seconds) },
                sluice: {
                    try await context.database.reset()
                    return try await context.measureRate(connections: connections, seconds: seconds) { connection, _ in
                        let rows = try await connection.queryCached(
                            "SELECT cardinality(sluice.enqueue_many($1, $2::jsonb[]))", [BenchDatabase.taskName, inputs])
                        return try rows[0].decode(Int.self, at: 0)
                    }
                })
            report.addMedian(.floor, Floor.insertLabel(connections: connections, batched: true), batched.floor, "rows/s")
            report.addMedian(
                .enqueue, "enqueue_many batch \(Floor.insertBatchSize), \(connections) conn", batched.sluice, "runs/s")
            report.checkRatio("enqueue_many, \(connections) conn vs floor batched insert", batched, minimum: 0.5)
        }
    }
}
