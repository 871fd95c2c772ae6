// sluice-doc-indexer-worker: a worker daemon that runs the `index-file` task until SIGTERM or
// SIGINT. Copy this shape for your own worker: declare the tasks, open a client, run a Worker.
//
//   sluice-doc-indexer-worker [--database URL] [--slots N]

import DocIndexing
import Foundation
import Sluice

let usage = """
    Usage: sluice-doc-indexer-worker [--database URL] [--slots N]

    Runs the index-file task until SIGTERM or SIGINT.

    Options:
      --database URL  PostgreSQL connection string or postgresql:// URL. Default: $DATABASE_URL,
                      else libpq's PGHOST, PGDATABASE and related variables.
      --slots N       Runs that execute at once, 1 to 1000. Default: 8

    """

/// Prints `message` and the usage to standard error and exits with status 2.
func exitWithUsageError(_ message: String) -> Never {
    FileHandle.standardError.write(Data("sluice-doc-indexer-worker: \(message)\n\n\(usage)".utf8))
    exit(2)
}

var databaseURL: String?
var slots = 8
var remaining = CommandLine.arguments.dropFirst()
while let argument = remaining.popFirst() {
    switch argument {
    case "--database":
        guard let value = remaining.popFirst() else { exitWithUsageError("--database needs a value") }
        databaseURL = value
    case "--slots":
        guard let value = remaining.popFirst() else { exitWithUsageError("--slots needs a value") }
        guard let number = Int(value), (1...1000).contains(number) else {
            exitWithUsageError("invalid value '\(value)' for --slots; expected a whole number from 1 to 1000")
        }
        slots = number
    case "--help", "-h":
        print(usage, terminator: "")
        exit(0)
    default:
        exitWithUsageError("unknown argument '\(argument)'")
    }
}

// The task: its name and options come from DocIndexing so the demo that enqueues it defines it
// identically. Unreadable files fail at once; other errors are retried.
let indexFile = Sluice.task(IndexFileTask.name, options: IndexFileTask.options) {
    (input: IndexFileInput, context: TaskContext) -> FileIndex in
    try IndexFileTask.run(input)
}

let logger = StandardErrorLogger()
do {
    let client = try await SluiceClient(connection: databaseURL, logger: logger)
    let worker = Worker(client: client, name: "doc-indexer", slots: slots, tasks: [indexFile])
    logger.info("worker starting", ["slots": String(slots), "pid": String(getpid())])
    try await worker.run()
    await client.close()
    logger.info("worker exited")
} catch {
    logger.error("worker failed", ["error": "\(error)"])
    exit(1)
}
