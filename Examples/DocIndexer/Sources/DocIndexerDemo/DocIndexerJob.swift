import DocIndexing
import Foundation
import Sluice
import SluiceCoordinator
import SluicePostgres

#if canImport(Glibc)
import Glibc
#endif

/// The demo's steps: prepare the database, walk the tree, enqueue from SQL and from Swift, run
/// a worker process and a coordinator until every run is final, and print the summary.
struct DocIndexerJob {
    let options: DemoOptions

    /// Runs the job and prints its summary.
    ///
    /// - Throws: `DemoError` when a step fails, the worker exits early, or the runs do not all
    ///   become final within `options.timeout`. Failed runs are reported, not thrown.
    func run() async throws {
        let wallClock = ContinuousClock()
        let startInstant = wallClock.now
        let stateDirectory = URL(
            fileURLWithPath: options.stateDirectory,
            relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        ).absoluteURL.standardizedFileURL
        try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)

        let database = try await DemoDatabase.open(databaseURL: options.databaseURL, stateDirectory: stateDirectory)
        do {
            try await runJob(database: database, stateDirectory: stateDirectory, wallClock: wallClock, start: startInstant)
        } catch {
            if !options.keepServer {
                try? await database.stopServer()
            }
            throw error
        }
        if options.keepServer {
            say("The server keeps running (--keep-server). Connect with:")
            say("  export DATABASE_URL='\(database.connectionString.replacingOccurrences(of: "'", with: "'\\''"))'")
        } else if database.startedServer != nil {
            try await database.stopServer()
            say("Stopped PostgreSQL.")
        }
    }

    private func runJob(
        database: DemoDatabase, stateDirectory: URL, wallClock: ContinuousClock, start: ContinuousClock.Instant
    ) async throws {
        let client = try await SluiceClient(connection: database.connectionString)
        defer { Task { await client.close() } }
        try await client.define(Self.indexFileDeclaration)

        // 1. Walk the tree. Every entry that is not a directory becomes a run.
        let tree = try DocumentTree.walk(options.docsDirectory)
        var paths = tree.paths
        if let limit = options.limit, paths.count > limit {
            paths = Array(paths.prefix(limit))
        }
        say(
            "Found \(tree.paths.count) files under \(options.docsDirectory): \(tree.regularFileCount) regular files, "
                + "\(tree.symbolicLinkCount) symbolic links, \(tree.otherCount) other, in \(tree.directoryCount) directories.")
        for failure in tree.unreadableDirectories {
            say("  could not list \(failure)")
        }
        if paths.count < tree.paths.count {
            say("Indexing the first \(paths.count) of them (--limit \(paths.count)).")
        }

        // 2. Enqueue half from SQL through psql and half from Swift. The runs carry the job's id
        //    in their metadata so the report counts only this job's runs.
        let jobID = UUID().uuidString.lowercased()
        let jobMetadata = #"{"job": "\#(jobID)"}"#
        let sqlPaths = paths.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        let swiftPaths = paths.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)

        let enqueueStart = wallClock.now
        let scriptFile = stateDirectory.appendingPathComponent("doc-indexer-enqueue.sql")
        try SQLEnqueueScript.write(paths: sqlPaths, metadata: jobMetadata, to: scriptFile)
        let enqueuedFromSQL = try await SQLEnqueueScript.run(
            file: scriptFile, connectionString: database.connectionString,
            outputFile: stateDirectory.appendingPathComponent("doc-indexer-psql.log"))

        var enqueuedFromSwift = 0
        let swiftOptions = EnqueueOptions(metadata: ["job": jobID])
        for batchStart in stride(from: 0, to: swiftPaths.count, by: 1000) {
            let batch = swiftPaths[batchStart..<min(batchStart + 1000, swiftPaths.count)]
            let handles = try await client.enqueueMany(
                Self.indexFileDeclaration, batch.map { IndexFileInput(path: $0) }, options: swiftOptions)
            enqueuedFromSwift += handles.count
        }
        let enqueueSeconds = seconds(wallClock.now - enqueueStart)
        say(
            "Enqueued \(enqueuedFromSQL + enqueuedFromSwift) runs in \(format(enqueueSeconds, digits: 2)) s: "
                + "\(enqueuedFromSQL) from SQL (psql -f \(scriptFile.path)), \(enqueuedFromSwift) from Swift "
                + "(SluiceClient.enqueueMany).")

        // 3. Run the coordinator here and the worker as a separate process until every run is final.
        let coordinator = Coordinator(
            connectionString: database.connectionString, logger: StandardErrorLogger(minimumLevel: .warning))
        let coordinatorTask = Task { await coordinator.run() }
        let workerLog = stateDirectory.appendingPathComponent("doc-indexer-worker.log")
        let worker = try startWorker(connectionString: database.connectionString, logFile: workerLog)
        say("Started worker process \(worker.processID) with \(options.slots) slots; its log is \(workerLog.path).")

        let waitOutcome: Result<Void, Error>
        do {
            try await waitUntilFinal(jobMetadata: jobMetadata, worker: worker, client: client)
            waitOutcome = .success(())
        } catch {
            waitOutcome = .failure(error)
        }

        worker.send(SIGTERM)
        let workerStatus = await worker.waitForExit()
        coordinator.stop()
        await coordinatorTask.value
        say("Stopped the worker (exit status \(workerStatus)) and the coordinator.")
        try waitOutcome.get()

        // 4. Report from the database.
        let connection = try await PostgresConnection.connect(database.connectionString, applicationName: "doc-indexer-demo")
        let report = try await JobReport.load(on: connection, jobMetadata: jobMetadata)
        await connection.close()
        // The server this job started stops at the end unless --keep-server was given, and
        // then nothing is left to list the failures from.
        let listsFailures = "sluice runs --status failed --task index-file --limit 10000"
        let failuresHint = database.startedServer != nil && !options.keepServer
            ? "run with --keep-server, export the DATABASE_URL it prints, then \(listsFailures) lists them"
            : "\(listsFailures) --database \"\(database.connectionString)\" lists them"
        printSummary(
            report, filesFound: tree.paths.count, enqueuedFromSQL: enqueuedFromSQL,
            enqueuedFromSwift: enqueuedFromSwift, wallSeconds: seconds(wallClock.now - start),
            failuresHint: failuresHint)
    }

    /// The task as the enqueueing side declares it: the same name and options as the worker's
    /// declaration, so `define` writes the same definition. The handler never runs here,
    /// because this process runs no `Worker`.
    static let indexFileDeclaration = Sluice.task(IndexFileTask.name, options: IndexFileTask.options) {
        (input: IndexFileInput, _: TaskContext) -> FileIndex in
        try IndexFileTask.run(input)
    }

    /// Starts `sluice-doc-indexer-worker` from the directory of this executable.
    private func startWorker(connectionString: String, logFile: URL) throws -> ChildProcess {
        let ownPath = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let workerPath = ownPath.deletingLastPathComponent().appendingPathComponent("sluice-doc-indexer-worker").path
        guard FileManager.default.isExecutableFile(atPath: workerPath) else {
            throw DemoError(
                message: "the worker executable \(workerPath) is missing; build it with "
                    + "'swift build -c release --product sluice-doc-indexer-worker'")
        }
        try? FileManager.default.removeItem(at: logFile)
        return try ChildProcess(
            executable: workerPath, arguments: ["--database", connectionString, "--slots", String(options.slots)],
            outputPath: logFile.path)
    }

    /// Polls every 200 ms until none of the job's runs is live, printing progress every 2 s.
    ///
    /// - Throws: `DemoError` when the worker exits first or `options.timeout` passes.
    private func waitUntilFinal(jobMetadata: String, worker: ChildProcess, client: SluiceClient) async throws {
        let connection = try await PostgresConnection.connect(client.connectionString, applicationName: "doc-indexer-demo")
        defer { Task { await connection.close() } }
        let clock = ContinuousClock()
        let deadline = clock.now + options.timeout
        var nextProgress = clock.now + .seconds(2)
        while true {
            let remaining = try await JobReport.countNotFinal(on: connection, jobMetadata: jobMetadata)
            if remaining == 0 {
                return
            }
            if let status = worker.exitStatus {
                throw DemoError(
                    message: "the worker exited with status \(status) while \(remaining) runs were not final; "
                        + "see its log")
            }
            if clock.now >= deadline {
                throw DemoError(
                    message: "\(remaining) runs were still not final after --timeout \(options.timeout); "
                        + "see the worker log and 'sluice runs --status queued,running'")
            }
            if clock.now >= nextProgress {
                say("  \(remaining) runs not final yet ...")
                nextProgress = clock.now + .seconds(2)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    private func printSummary(
        _ report: JobReport, filesFound: Int, enqueuedFromSQL: Int, enqueuedFromSwift: Int, wallSeconds: Double,
        failuresHint: String
    ) {
        let enqueued = enqueuedFromSQL + enqueuedFromSwift
        var lines = ["", "Summary"]
        lines.append("  files found:        \(filesFound) under \(options.docsDirectory)")
        lines.append("  runs enqueued:      \(enqueued) (from SQL: \(enqueuedFromSQL), from Swift: \(enqueuedFromSwift))")
        lines.append("  succeeded:          \(report.succeeded)")
        lines.append("  failed:             \(report.failed)")
        if report.cancelled > 0 || report.notFinal > 0 {
            lines.append("  cancelled/skipped:  \(report.cancelled), not final: \(report.notFinal)")
        }
        for message in report.firstFailures {
            lines.append("    - \(message)")
        }
        if report.failed > report.firstFailures.count {
            lines.append("    (\(report.failed - report.firstFailures.count) more; \(failuresHint))")
        }
        if let throughput = report.throughput, let processing = report.processingSeconds {
            lines.append(
                "  throughput:         \(format(throughput, digits: 0)) runs/s "
                    + "(\(report.succeeded + report.failed) runs in \(format(processing, digits: 2)) s, first start to last finish)")
        }
        if let p50 = report.latencyP50, let p99 = report.latencyP99 {
            lines.append(
                "  enqueue to start:   p50 \(format(p50 * 1000, digits: 0)) ms, p99 \(format(p99 * 1000, digits: 0)) ms "
                    + "(first attempts; includes the backlog wait, because every run is enqueued before the worker starts)")
        }
        lines.append("  wall time:          \(format(wallSeconds, digits: 1)) s (server start to summary)")
        lines.append("  largest files:")
        for file in report.largestFiles {
            lines.append("    \(file.sha256)  \(file.bytes) bytes  \(file.path)")
        }
        say(lines.joined(separator: "\n"))
    }
}

/// Returns `duration` in seconds.
func seconds(_ duration: Duration) -> Double {
    let parts = duration.components
    return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
}

/// Formats `value` with `digits` decimal places.
func format(_ value: Double, digits: Int) -> String {
    String(format: "%.\(digits)f", value)
}
