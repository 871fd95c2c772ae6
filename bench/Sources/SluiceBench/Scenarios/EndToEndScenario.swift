import Foundation
import SluicePostgres

/// Drains a backlog with worker processes, each drain in rounds alternating with the floor's
/// drain of the same connection count and batch size, then runs a producer alongside one
/// worker process.
///
/// Two kinds of worker process take part. The SQL-protocol workers call `sluice.claim` and
/// `sluice.complete` directly with a fixed batch size, and the SDK workers run
/// `Sluice.Worker`, which claims up to its free slots. The gap between the two is the SDK's cost.
enum EndToEndScenario {
    static func run(_ context: ScenarioContext) async throws {
        let report = context.report
        let hasStatistics = try await context.database.hasStatementStatistics()
        if hasStatistics {
            _ = try await context.database.withConnection("statistics") { connection in
                try await connection.execute("SELECT pg_stat_statements_reset()")
            }
        }

        // Each drain is measured in rounds alternating with the floor's drain of the same
        // connection count and batch size. Drains of batch 1 have no target and take the whole
        // drainSeconds, so they run one round.
        for config in DrainConfig.all + DrainConfig.pipelinedVariants {
            let pair = try await measureDrainPair(
                context, floorConfig: config, label: config.label, rounds: config.batchSize > 1 ? context.rounds : 1
            ) {
                try await drainWithProcesses(context, config)
            }
            if config.batchSize > 1 {
                report.checkRatio("end to end, \(config.label) vs floor", pair, minimum: 0.5)
            }
        }

        // The SDK claims up to its free slots, so the floor with batch = slots compares.
        for (processes, slots) in [(1, 10), (1, 100), (4, 100)] {
            let label = "SDK Worker, \(processes) process\(processes == 1 ? "" : "es") x \(slots) slots"
            let pair = try await measureDrainPair(
                context, floorConfig: DrainConfig(processes: processes, loops: 1, batchSize: slots), label: label
            ) {
                try await drainWithSDKProcesses(context, processes: processes, slots: slots)
            }
            report.checkRatio("end to end, \(label) vs floor batch \(slots)", pair, minimum: 0.5)
        }

        try await steadyState(context)

        if hasStatistics {
            report.setTopStatements(try await topStatements(context))
        }
    }

    /// Measures a drain of a fresh backlog by `drain` beside the floor's drain with the
    /// connections and batch size of `floorConfig`, records both figures and returns them.
    private static func measureDrainPair(
        _ context: ScenarioContext, floorConfig: DrainConfig, label: String, rounds: Int? = nil,
        drain: () async throws -> (completed: Int, seconds: Double)
    ) async throws -> PairedFigures {
        var floorRuns: [Int] = []
        var sluiceRuns: [Int] = []
        let pair = try await context.measurePaired(
            rounds: rounds,
            floor: {
                let (completed, seconds) = try await Floor.drain(context, floorConfig)
                floorRuns.append(completed)
                return Double(completed) / seconds
            },
            sluice: {
                try await context.database.reset()
                try await context.enqueueBacklog(context.drainBacklog)
                let (completed, seconds) = try await drain()
                sluiceRuns.append(completed)
                return Double(completed) / seconds
            })
        context.report.addMedian(
            .floor, "\(floorConfig.floorLabel), beside \(label)", pair.floor, "runs/s", note: runsNote(floorRuns))
        context.report.addMedian(.endToEnd, "drain " + label, pair.sluice, "runs/s", note: runsNote(sluiceRuns))
        return pair
    }

    /// Returns "50000 runs" when every round completed as many runs, else each round's count.
    private static func runsNote(_ runs: [Int]) -> String {
        Set(runs).count == 1 ? "\(runs[0]) runs" : "runs " + runs.map(String.init).joined(separator: ", ")
    }

    /// Starts the worker processes, lets them drain together and returns the runs completed
    /// and the seconds from "go" to the last completion.
    static func drainWithProcesses(
        _ context: ScenarioContext, _ config: DrainConfig, seconds: Double? = nil, drain: Bool = true
    ) async throws -> (Int, Double) {
        let arguments = WorkerProcess.arguments(
            database: context.database.connectionString, loops: config.loops, batchSize: config.batchSize,
            pipelined: config.pipelined, seconds: seconds ?? context.drainSeconds, drain: drain)
        var children: [ChildProcess] = []
        for _ in 0..<config.processes {
            children.append(try ChildProcess(arguments: arguments))
        }
        for child in children {
            _ = try await child.expect("ready")
        }
        let started = Clock.wall()
        for child in children {
            child.send("go")
        }
        var completed = 0
        var lastCompletion = started
        for child in children {
            let result = try JSONDecoder().decode(
                WorkerProcess.Result.self, from: Data(try await child.expect("result").utf8))
            completed += result.completed
            lastCompletion = max(lastCompletion, result.lastCompletionWall)
            let status = await child.waitForExit()
            guard status == 0 else {
                throw BenchError.failed("worker process \(child.pid) exited with status \(status)")
            }
        }
        return (completed, max(lastCompletion - started, 1e-6))
    }

    /// Starts `processes` SDK worker processes, lets them drain together, and returns the runs
    /// that succeeded and the seconds from "go" until no run is ready or leased. This process
    /// polls for that every 20 ms, so the time is up to 20 ms long.
    static func drainWithSDKProcesses(
        _ context: ScenarioContext, processes: Int, slots: Int
    ) async throws -> (Int, Double) {
        let arguments = [
            "--sdk", "--database", context.database.connectionString, "--slots", String(slots),
            "--seconds", String(context.drainSeconds + 5),
        ]
        var children: [ChildProcess] = []
        for _ in 0..<processes {
            children.append(try ChildProcess(arguments: arguments))
        }
        for child in children {
            _ = try await child.expect("ready")
        }
        return try await context.database.withConnection("drain monitor") { connection in
            let started = Clock.monotonic()
            for child in children {
                child.send("go")
            }
            var finished = Clock.monotonic()
            while finished - started < context.drainSeconds {
                let left = try await connection.queryCached(
                    "SELECT (SELECT count(*) FROM sluice.ready) + (SELECT count(*) FROM sluice.leases)")
                finished = Clock.monotonic()
                if try left[0].decode(Int.self, at: 0) == 0 {
                    break
                }
                await Clock.sleep(seconds: 0.02)
            }
            for child in children {
                child.send("stop")
            }
            for child in children {
                _ = try await child.expect("result")
                let status = await child.waitForExit()
                guard status == 0 else {
                    throw BenchError.failed("SDK worker process \(child.pid) exited with status \(status)")
                }
            }
            let succeeded = try await connection.query("SELECT count(*) FROM sluice.runs WHERE status = 'succeeded'")
            return (try succeeded[0].decode(Int.self, at: 0), finished - started)
        }
    }

    /// Measures one worker process draining while a producer in this process enqueues batches
    /// of 100 with `enqueue_many`, pausing while more than 5,000 runs wait.
    private static func steadyState(_ context: ScenarioContext) async throws {
        try await context.database.reset()
        let seconds = context.measureSeconds * 2
        let config = DrainConfig(processes: 1, loops: 2, batchSize: 50)
        let stopFlag = StopFlag()
        let producer = Task {
            try await produce(context, until: stopFlag, backlogLimit: 5_000, batchSize: 100)
        }
        let (completed, elapsed) = try await drainWithProcesses(context, config, seconds: seconds, drain: false)
        stopFlag.stop()
        let enqueued = try await producer.value
        context.report.add(.endToEnd, "steady state, producer + \(config.label)", Double(completed) / elapsed,
                           "runs/s", note: "\(enqueued) enqueued, \(completed) completed")
    }

    /// Enqueues batches until `stopFlag` is set, waiting while more than `backlogLimit` runs
    /// are ready, and returns the number of runs enqueued.
    static func produce(
        _ context: ScenarioContext, until stopFlag: StopFlag, backlogLimit: Int, batchSize: Int
    ) async throws -> Int {
        try await context.database.withConnection("producer") { connection in
            var enqueued = 0
            var batches = 0
            while !stopFlag.isStopped {
                if batches % 10 == 0 {
                    let waiting = try await connection.queryCached("SELECT count(*) FROM sluice.ready")
                    if try waiting[0].decode(Int.self, at: 0) > backlogLimit {
                        await Clock.sleep(seconds: 0.01)
                        continue
                    }
                }
                _ = try await connection.queryCached(
                    "SELECT cardinality(sluice.enqueue_many($1, $2::jsonb[]))",
                    [BenchDatabase.taskName, BenchInput.inputs(enqueued..<enqueued + batchSize)])
                enqueued += batchSize
                batches += 1
            }
            return enqueued
        }
    }

    /// Returns the twelve statements with the most execution time since the reset, leaving out
    /// the floor's queries. Top-level calls and the statements nested in Sluice's functions are
    /// both listed (pg_stat_statements.track = all), so a function's time also counts in its
    /// caller's row.
    private static func topStatements(_ context: ScenarioContext) async throws -> [StatementStatistics] {
        try await context.database.withConnection("statistics") { connection in
            let rows = try await connection.query("""
                SELECT query, toplevel, calls, total_exec_time, mean_exec_time, shared_blks_hit, shared_blks_read
                FROM pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND query NOT LIKE '%pg_stat_statements%'
                  AND query NOT LIKE '%bench_floor%'
                ORDER BY total_exec_time DESC LIMIT 12
                """)
            return try rows.map { row in
                StatementStatistics(
                    query: try row.decode(String.self, at: 0), topLevel: try row.decode(Bool.self, at: 1),
                    calls: try row.decode(Int.self, at: 2), totalMilliseconds: try row.decode(Double.self, at: 3),
                    meanMilliseconds: try row.decode(Double.self, at: 4), sharedBlocksHit: try row.decode(Int.self, at: 5),
                    sharedBlocksRead: try row.decode(Int.self, at: 6))
            }
        }
    }
}
