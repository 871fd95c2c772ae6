import Foundation
import SluicePostgres

/// Claim throughput with 10,000, 100,000 and 1,000,000 runs waiting, and the plan of the claim
/// query at each size.
///
/// After five warm-up batches, two claim loops of batch 100 (claim, no-op handler, complete)
/// drain in rounds. A round ends when a quarter of the backlog is gone, and an untimed
/// `enqueue_many` then tops the backlog up again, so it stays between three quarters of its
/// nominal size and the whole. Rounds repeat until they add up to `measureSeconds`: the
/// smallest backlog drains a quarter in a few hundredths of a second, too short to time alone.
enum BacklogScenario {
    static func run(_ context: ScenarioContext) async throws {
        let report = context.report
        let sizes = context.quick ? [1_000, 3_000, 10_000] : [10_000, 100_000, 1_000_000]
        var rates: [Int: Double] = [:]
        for size in sizes {
            try await context.database.reset()
            let built = Clock.monotonic()
            try await context.enqueueBacklog(size)
            report.add(.backlog, "\(size) waiting: enqueue_many build rate", Double(size) / (Clock.monotonic() - built),
                       "runs/s")

            var connections: [PostgresConnection] = []
            for index in 0..<2 {
                connections.append(try await context.database.connect("backlog \(index)"))
            }
            // One worker per loop: claims of one worker id take turns.
            var workerIDs: [UUID] = []
            for (index, connection) in connections.enumerated() {
                workerIDs.append(try await BenchDatabase.registerWorker(connection, name: "bench-backlog-\(index)", slots: 100))
            }
            if let plan = try await ClaimPlan.capture(context, workerID: workerIDs[0], batchSize: 100) {
                report.setPlan("claim(100) with \(size) runs waiting", plan)
            }

            // A few batches first, outside the measurement: the first calls of a session plan
            // the function's statements, which would otherwise land in the smallest size's figure.
            let warmUp = SluiceStep(connection: connections[0], workerID: workerIDs[0], batchSize: 100)
            for _ in 0..<5 {
                _ = try await warmUp.step()
            }
            var stats = DrainStats()
            var elapsed = 0.0
            var rounds = 0
            var nextSeq = size
            while elapsed < context.measureSeconds {
                let counter = RunCounter(limit: size / 4)
                let limits = DrainLimits(
                    deadline: Clock.monotonic() + context.measureSeconds - elapsed, stopWhenEmpty: true,
                    counter: counter)
                let started = Clock.monotonic()
                let round = try await withThrowingTaskGroup(of: DrainStats.self) { group in
                    for (connection, workerID) in zip(connections, workerIDs) {
                        let step = SluiceStep(connection: connection, workerID: workerID, batchSize: 100)
                        group.addTask { try await DrainLoop.run(step, limits: limits) }
                    }
                    var total = DrainStats()
                    for try await stats in group {
                        total.merge(stats)
                    }
                    return total
                }
                elapsed += Clock.monotonic() - started
                rounds += 1
                stats.merge(round)
                if round.completed == 0 {
                    break
                }
                try await context.enqueueBacklog(round.completed, firstSeq: nextSeq)
                nextSeq += round.completed
            }
            for connection in connections {
                await connection.close()
            }
            let rate = report.add(.backlog, "\(size) waiting: claim+complete", Double(stats.completed) / elapsed,
                                  "runs/s", note: "\(stats.completed) runs in \(rounds) rounds")
            let steps = Percentiles(seconds: stats.stepSeconds)
            report.add(.backlog, "\(size) waiting: claim+complete of 100, p50", steps.p50, "ms")
            report.add(.backlog, "\(size) waiting: claim+complete of 100, p95", steps.p95, "ms")
            rates[size] = rate
        }
        if let smallest = sizes.first, let largest = sizes.last {
            report.checkRatio("claim throughput, \(largest) vs \(smallest) waiting", measured: rates[largest],
                              reference: rates[smallest], minimum: 0.8)
        }
    }
}

/// Captures the plans of the claim queries inside `sluice.claim` with auto_explain, which logs
/// the plans of statements nested in functions. The claim runs in a transaction that is rolled
/// back, so the backlog is unchanged.
enum ClaimPlan {
    /// Returns the logged plans of the statements with `FOR UPDATE SKIP LOCKED`, or nil with
    /// `--database`, where the server log is not readable.
    static func capture(_ context: ScenarioContext, workerID: UUID, batchSize: Int) async throws -> String? {
        guard let server = context.database.server else { return nil }
        let logPath = server.directory.appendingPathComponent("server.log").path
        let offset = (try? FileManager.default.attributesOfItem(atPath: logPath)[.size] as? Int) ?? 0
        try await context.database.withConnection("explain") { connection in
            for statement in [
                "LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0", "SET auto_explain.log_analyze = on",
                "SET auto_explain.log_buffers = on", "SET auto_explain.log_nested_statements = on",
                "BEGIN",
            ] {
                try await connection.execute(statement)
            }
            _ = try await connection.query("SELECT count(*) FROM sluice.claim($1, $2)", [workerID, batchSize])
            try await connection.execute("ROLLBACK")
        }
        guard let handle = FileHandle(forReadingAtPath: logPath) else { return nil }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)

        // Each log entry starts with a time stamp; the plan lines that follow it are indented.
        var entries: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.first == "\t" || line.first == " ", !entries.isEmpty {
                entries[entries.count - 1] += "\n" + line.replacingOccurrences(of: "\t", with: "  ")
            } else {
                entries.append(String(line))
            }
        }
        let plans = entries.filter { $0.contains("SKIP LOCKED") && $0.contains("plan:") }
        return plans.isEmpty ? nil : plans.joined(separator: "\n\n")
    }
}
