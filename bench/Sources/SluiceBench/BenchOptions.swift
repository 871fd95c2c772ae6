import Foundation

/// The scenarios, in the order a full run executes them, and the names figures are recorded
/// under.
enum ScenarioName: String, CaseIterable, Sendable {
    /// Not a scenario of its own: the name under which enqueue and end-to-end record the floor
    /// figures they measure alongside their own.
    case floor
    case enqueue
    case endToEnd = "end-to-end"
    case latency
    case backlog
    case bloat
    case memory
    case flow
}

extension ScenarioName {
    /// The scenarios a run can select, in the order a full run executes them.
    static var selectable: [ScenarioName] { allCases.filter { $0 != .floor } }
}

/// Command-line options of a benchmark run.
struct BenchOptions: Sendable {
    /// Seconds-long runs with tiny sizes, for smoke tests; the figures mean little.
    var quick = false
    /// The scenarios to run, in `ScenarioName.selectable` order.
    var scenarios: [ScenarioName] = ScenarioName.selectable
    /// How many times each figure compared with the floor is measured, alternating with its
    /// floor figure. nil means 3, or 1 with `quick`.
    var rounds: Int?
    /// A libpq connection string or URL; nil starts an embedded server in a temporary directory.
    var databaseURL: String?
    /// Where the JSON results go; the Markdown summary goes next to it with extension `.md`.
    var outputPath = "bench/results/latest.json"
    /// Keep the embedded server's directory after the run, for reading its log.
    var keepServer = false
    /// The partitions of run history the measurements run with: a deployment with the default
    /// retention of 7 days and a partition a day has 8 after its first week.
    var historyPartitions = 8

    static let usage = """
        Usage: sluice-bench [--quick] [--scenario NAME]... [--rounds N] [--database URL] [--output PATH]
                            [--keep-server] [--history-partitions N]

        Runs the Sluice benchmark and prints a table of figures and ratios against the targets.

          --quick          run each measurement for a second or less with tiny sizes (smoke test)
          --scenario NAME  run only this scenario; repeatable. Names: \(ScenarioName.selectable.map(\.rawValue).joined(separator: ", "))
                           enqueue and end-to-end measure the floor they are compared with;
                           flow compares its three drains with each other.
          --rounds N       measure each figure compared with the floor N times (1 to 9), alternating
                           with its floor figure, and judge the median ratio (default 3, 1 with --quick)
          --database URL   use this database instead of starting an embedded server. The
                           benchmark empties the sluice tables and the bench_floor schema in it.
          --output PATH    JSON results file (default bench/results/latest.json); a Markdown
                           summary is written next to it with the extension .md
          --keep-server    keep the embedded server's data directory (and server.log) after the run
          --history-partitions N
                           start partitions of sluice.runs until it has N (1 to 100, default 8: the
                           default retention of 7 days with a partition a day); runs go to the last
        """

    /// Parses the arguments after the program name.
    ///
    /// - Throws: `BenchError.usage` naming the invalid argument.
    static func parse(_ arguments: [String]) throws -> BenchOptions {
        var options = BenchOptions()
        var selected: [ScenarioName] = []
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            switch argument {
            case "--quick":
                options.quick = true
            case "--keep-server":
                options.keepServer = true
            case "--scenario":
                let value = try value(of: argument, from: &remaining)
                if value == ScenarioName.floor.rawValue {
                    throw BenchError.usage(
                        "\"floor\" is no longer a scenario of its own: enqueue and end-to-end measure the floor "
                            + "beside their own figures, so select one of those")
                }
                guard let scenario = ScenarioName(rawValue: value), ScenarioName.selectable.contains(scenario) else {
                    throw BenchError.usage(
                        "unknown scenario \"\(value)\"; expected one of "
                            + ScenarioName.selectable.map(\.rawValue).joined(separator: ", "))
                }
                selected.append(scenario)
            case "--database":
                options.databaseURL = try value(of: argument, from: &remaining)
            case "--output":
                options.outputPath = try value(of: argument, from: &remaining)
            case "--rounds":
                let value = try value(of: argument, from: &remaining)
                guard let count = Int(value), (1...9).contains(count) else {
                    throw BenchError.usage("invalid --rounds \"\(value)\"; expected a number from 1 to 9")
                }
                options.rounds = count
            case "--history-partitions":
                let value = try value(of: argument, from: &remaining)
                guard let count = Int(value), (1...100).contains(count) else {
                    throw BenchError.usage("invalid --history-partitions \"\(value)\"; expected a number from 1 to 100")
                }
                options.historyPartitions = count
            case "--help", "-h":
                throw BenchError.helpRequested
            default:
                throw BenchError.usage("unknown argument \"\(argument)\"")
            }
        }
        if !selected.isEmpty {
            options.scenarios = ScenarioName.selectable.filter(selected.contains)
        }
        return options
    }

    private static func value(of option: String, from remaining: inout ArraySlice<String>) throws -> String {
        guard let value = remaining.popFirst(), !value.hasPrefix("--") else {
            throw BenchError.usage("missing value after \(option)")
        }
        return value
    }
}

/// Errors that end a benchmark run with a message.
enum BenchError: Error, CustomStringConvertible {
    case usage(String)
    case helpRequested
    case failed(String)

    var description: String {
        switch self {
        case .usage(let message):
            return "invalid arguments: \(message)\n\n\(BenchOptions.usage)"
        case .helpRequested:
            return BenchOptions.usage
        case .failed(let message):
            return message
        }
    }
}
