// A worker process for the crash test in SluiceTests.
//
// Usage: SluiceTestWorker CONNECTION_STRING WORKER_NAME
//
// Runs a Worker for the task "crash-probe" with a lease timeout of 2 s. Each attempt inserts a
// row into probe_starts; attempt 1 then sleeps for two minutes (the test kills the process
// meanwhile), later attempts insert a row into probe_completions and return. The test creates
// both tables.
import Foundation
import Sluice
import SluicePostgres

struct Probe: Codable, Sendable {
    var label: String
}

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: SluiceTestWorker CONNECTION_STRING WORKER_NAME\n".utf8))
    exit(2)
}
let connectionString = arguments[1]
let workerName = arguments[2]

let sideEffects = try await PostgresConnection.connect(connectionString)
let probe = Sluice.task(
    "crash-probe", retries: .fixed(maxAttempts: 3, delay: .zero), timeout: .seconds(300)
) { (input: Probe, context: TaskContext) -> Probe in
    try await sideEffects.execute(
        "INSERT INTO probe_starts (run_id, attempt, pid) VALUES ($1, $2, $3)",
        [context.runID, context.attempt, Int(getpid())])
    if context.attempt == 1 {
        try await Task.sleep(for: .seconds(120))
    }
    try await sideEffects.execute("INSERT INTO probe_completions (run_id) VALUES ($1)", [context.runID])
    return input
}

let client = try await SluiceClient(connection: connectionString, logger: StandardErrorLogger(minimumLevel: .info))
try await Worker(
    client: client, name: workerName, slots: 2, tasks: [probe], leaseTimeout: .seconds(2),
    pollInterval: .milliseconds(200)
).run()
