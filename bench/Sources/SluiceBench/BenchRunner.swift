import Foundation
import Sluice
import SluiceCoordinator

/// Runs the selected scenarios against one database and writes the report.
enum BenchRunner {
    static func main(arguments: [String]) async -> Int32 {
        let options: BenchOptions
        do {
            options = try BenchOptions.parse(arguments)
        } catch BenchError.helpRequested {
            printLine(BenchOptions.usage)
            return 0
        } catch {
            printError("sluice-bench: \(error)")
            return 2
        }
        // A worker process that dies must not take the benchmark down with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)

        let database: BenchDatabase
        do {
            database = try await BenchDatabase.open(
                url: options.databaseURL, keepServer: options.keepServer, historyPartitions: options.historyPartitions)
        } catch {
            printError("sluice-bench: could not prepare the database: \(error)")
            return 1
        }
        do {
            try await run(options, database)
            await database.close()
            return 0
        } catch {
            printError("sluice-bench: \(error)")
            await database.close()
            return 1
        }
    }

    private static func run(_ options: BenchOptions, _ database: BenchDatabase) async throws {
        let settings = try await database.settings()
        let report = ReportBuilder(report: Report(
            date: ISO8601DateFormatter().string(from: Date()),
            command: (["sluice-bench"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
            quick: options.quick, machine: machine(), settings: settings))
        printLine("sluice-bench \(options.quick ? "(quick) " : "")on \(database.server == nil ? "the given database" : "an embedded server")")
        for (name, value) in report.report.machine.sorted(by: { $0.key < $1.key }) {
            printLine("  \(name): \(value)")
        }
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) {
            printLine("  \(name) = \(value)")
        }

        // Deployments run a coordinator, and it is part of what keeps the queue fast: among other
        // things it vacuums the tables of live runs every few seconds. One runs in this process
        // for the whole benchmark.
        let coordinator = Coordinator(connectionString: database.connectionString, logger: NoOpLogger())
        let coordinatorRun = Task { await coordinator.run() }
        defer { coordinator.stop() }
        printLine("  coordinator: in this process, vacuum interval \(coordinator.options.vacuumInterval)")

        let rounds = options.rounds ?? (options.quick ? 1 : 3)
        if options.scenarios.contains(.enqueue) || options.scenarios.contains(.endToEnd) {
            report.note("each enqueue and end-to-end figure compared with the floor: the median of \(rounds) "
                        + "round\(rounds == 1 ? "" : "s"), alternating with its floor figure")
        }
        let context = ScenarioContext(database: database, quick: options.quick, report: report, rounds: rounds)
        for scenario in options.scenarios {
            printLine("\n== \(scenario.rawValue)")
            report.note("load average before \(scenario.rawValue): \(loadAverage())")
            let started = Clock.monotonic()
            switch scenario {
            case .floor: break
            case .enqueue: try await EnqueueScenario.run(context)
            case .endToEnd: try await EndToEndScenario.run(context)
            case .latency: try await LatencyScenario.run(context)
            case .backlog: try await BacklogScenario.run(context)
            case .bloat: try await BloatScenario.run(context)
            case .memory: try await MemoryScenario.run(context)
            case .flow: try await FlowScenario.run(context)
            }
            printLine(String(format: "  (%.0f s)", Clock.monotonic() - started))
        }

        coordinator.stop()
        await coordinatorRun.value
        try report.write(to: options.outputPath)
        printLine("\n" + report.markdown())
        printLine("written: \(options.outputPath)")
    }

    /// Returns the 1, 5 and 15 minute load averages from /proc/loadavg. Other processes
    /// running at the same time make the figures noisy, so the report records them.
    private static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
            .split(separator: " ").prefix(3).joined(separator: " ") ?? "unknown"
    }

    /// The machine: processors, memory, kernel release and the load average at the start.
    private static func machine() -> [String: String] {
        var info = utsname()
        uname(&info)
        let release = withUnsafeBytes(of: &info.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return [
            "processors": String(ProcessInfo.processInfo.activeProcessorCount),
            "memory": String(format: "%.1f GB", Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824),
            "kernel": release,
            "load average at start": loadAverage(),
        ]
    }
}
