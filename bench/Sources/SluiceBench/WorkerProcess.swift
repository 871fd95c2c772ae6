import Foundation
import SluicePostgres

/// The `worker` mode: a separate process that registers one Sluice worker and drains the queue
/// through the SQL protocol, so that several worker processes compete as they would in
/// production.
///
/// Protocol on standard input and output, one line each: the child prints `ready`, waits for
/// `go`, drains, and prints `result {json}`. `stop` on standard input ends a timed run early.
/// With `--memory-runs N` it instead prints `idle`, keeps N runs of sleeping handlers at once,
/// prints `inflight`, then completes them and prints `result {json}`. With `--sdk` the process
/// runs `Sluice.Worker` with `--slots` in place of the SQL-protocol loops.
enum WorkerProcess {
    static let commandName = "worker"

    struct Arguments {
        var database = ""
        var loops = 1
        var batchSize = 10
        var pipelined = false
        var seconds = 60.0
        var drain = false
        var memoryRuns = 0
        var sleepMilliseconds = 1000
        /// Run `Sluice.Worker` instead of the SQL-protocol loops.
        var sdk = false
        /// Slots of the SDK worker.
        var slots = 10
    }

    /// The report of a child: runs completed, the wall time of the last completion and the
    /// duration of each claim-and-complete step.
    struct Result: Codable {
        var completed: Int
        var lastCompletionWall: Double
        var stepSeconds: [Double]
    }

    /// Builds the argument list that `main` parses.
    static func arguments(
        database: String, loops: Int, batchSize: Int, pipelined: Bool = false, seconds: Double, drain: Bool
    ) -> [String] {
        var arguments = [
            "--database", database, "--loops", String(loops), "--batch", String(batchSize),
            "--seconds", String(seconds),
        ]
        if pipelined {
            arguments.append("--pipelined")
        }
        if drain {
            arguments.append("--drain")
        }
        return arguments
    }

    static func main(arguments: [String]) async -> Int32 {
        do {
            let parsed = try parse(arguments)
            switch (parsed.sdk, parsed.memoryRuns > 0) {
            case (false, false): try await runThroughputMode(parsed)
            case (false, true): try await runMemoryMode(parsed)
            case (true, false): try await runSDKThroughputMode(parsed)
            case (true, true): try await runSDKMemoryMode(parsed)
            }
            return 0
        } catch {
            FileHandle.standardError.write(Data("sluice-bench worker \(getpid()): \(error)\n".utf8))
            return 1
        }
    }

    private static func parse(_ arguments: [String]) throws -> Arguments {
        var parsed = Arguments()
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            if argument == "--pipelined" {
                parsed.pipelined = true
                continue
            }
            if argument == "--drain" {
                parsed.drain = true
                continue
            }
            if argument == "--sdk" {
                parsed.sdk = true
                continue
            }
            guard let value = remaining.popFirst() else {
                throw BenchError.usage("worker: missing value after \(argument)")
            }
            switch argument {
            case "--database": parsed.database = value
            case "--loops": parsed.loops = Int(value) ?? 0
            case "--batch": parsed.batchSize = Int(value) ?? 0
            case "--seconds": parsed.seconds = Double(value) ?? 0
            case "--memory-runs": parsed.memoryRuns = Int(value) ?? 0
            case "--sleep-ms": parsed.sleepMilliseconds = Int(value) ?? 0
            case "--slots": parsed.slots = Int(value) ?? 0
            default: throw BenchError.usage("worker: unknown argument \"\(argument)\"")
            }
        }
        guard parsed.loops > 0, parsed.batchSize > 0, parsed.seconds > 0, parsed.slots > 0 else {
            throw BenchError.usage("worker: --loops, --batch, --slots and --seconds must be positive")
        }
        return parsed
    }

    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    private static func runThroughputMode(_ arguments: Arguments) async throws {
        var connections: [PostgresConnection] = []
        for _ in 0..<arguments.loops {
            connections.append(
                try await PostgresConnection.connect(arguments.database, applicationName: "sluice-bench worker"))
        }
        // One worker per loop, as docs/sql-api.md advises: claims of one worker id take turns.
        var workerIDs: [UUID] = []
        for (index, connection) in connections.enumerated() {
            workerIDs.append(try await BenchDatabase.registerWorker(
                connection, name: "bench-\(getpid())-\(index)", slots: arguments.batchSize))
        }
        say("ready")
        guard readLine() == "go" else {
            throw BenchError.failed("expected \"go\" on standard input")
        }
        let stopFlag = StopFlag()
        Thread.detachNewThread {
            // Any line (normally "stop") or the end of input stops the loops.
            _ = readLine()
            stopFlag.stop()
        }
        let limits = DrainLimits(
            deadline: Clock.monotonic() + arguments.seconds, stopWhenEmpty: arguments.drain, stopFlag: stopFlag)
        let stats = try await withThrowingTaskGroup(of: DrainStats.self) { group in
            for (connection, workerID) in zip(connections, workerIDs) {
                let step = SluiceStep(
                    connection: connection, workerID: workerID, batchSize: arguments.batchSize,
                    pipelined: arguments.pipelined)
                group.addTask { try await DrainLoop.run(step, limits: limits) }
            }
            var total = DrainStats()
            for try await stats in group {
                total.merge(stats)
            }
            return total
        }
        for workerID in workerIDs {
            _ = try await connections[0].query("SELECT sluice.stop_worker($1)", [workerID])
        }
        for connection in connections {
            await connection.close()
        }
        let result = Result(
            completed: stats.completed, lastCompletionWall: stats.lastCompletionWall, stepSeconds: stats.stepSeconds)
        say("result " + String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }

    /// Keeps `memoryRuns` runs in flight at once, each handler sleeping, the way a worker with
    /// that many slots runs slow tasks: claimed rows, decoded inputs and one Swift task per run.
    private static func runMemoryMode(_ arguments: Arguments) async throws {
        let connection = try await PostgresConnection.connect(
            arguments.database, applicationName: "sluice-bench worker")
        let listener = try await PostgresListener.start(
            arguments.database, channels: ["sluice_ready"], applicationName: "sluice-bench worker listener")
        let workerID = try await BenchDatabase.registerWorker(
            connection, name: "bench-memory-\(getpid())", slots: arguments.memoryRuns)
        say("idle")

        let sleepNanoseconds = UInt64(arguments.sleepMilliseconds) * 1_000_000
        let finished = try await withThrowingTaskGroup(of: SluiceStep.ClaimedRun.self) { group in
            var inFlight = 0
            while inFlight < arguments.memoryRuns {
                let rows = try await connection.queryCached(
                    SluiceStep.claimSQL, [workerID, min(100, arguments.memoryRuns - inFlight)])
                if rows.isEmpty {
                    await Clock.sleep(seconds: 0.02)
                    continue
                }
                for row in rows {
                    let runID = try row.decode(Int64.self, at: 0)
                    let attempt = try row.decode(Int32.self, at: 1)
                    let input = try row.decode(PostgresJSON.self, at: 2)
                    group.addTask {
                        let (output, seq) = try NoopHandler.run(input, onStart: nil)
                        try await Task.sleep(nanoseconds: sleepNanoseconds)
                        return SluiceStep.ClaimedRun(runID: runID, attempt: attempt, output: output, seq: seq)
                    }
                }
                inFlight += rows.count
            }
            say("inflight")
            var finished: [SluiceStep.ClaimedRun] = []
            for try await run in group {
                finished.append(run)
            }
            return finished
        }
        _ = try await connection.query(
            SluiceStep.completeSQL,
            [finished.map(\.runID), finished.map(\.attempt), finished.map(\.output)])
        _ = try await connection.query("SELECT sluice.stop_worker($1)", [workerID])
        listener.close()
        await connection.close()
        let result = Result(completed: finished.count, lastCompletionWall: Clock.wall(), stepSeconds: [])
        say("result " + String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }
}
