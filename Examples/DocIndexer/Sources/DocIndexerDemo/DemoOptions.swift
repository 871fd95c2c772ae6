import Foundation

/// The command line of `sluice-doc-indexer-demo`.
struct DemoOptions {
    /// The directory tree whose files are indexed.
    var docsDirectory = "/usr/share/doc"
    /// The database to use, or nil to start the embedded server.
    var databaseURL: String?
    /// The project directory for local state: the embedded server, the SQL file, the worker log.
    var stateDirectory = ".sluice"
    /// The maximum number of files to enqueue, or nil for every file found.
    var limit: Int?
    /// The worker's slots.
    var slots = 8
    /// Whether the embedded server keeps running after the demo.
    var keepServer = false
    /// How long to wait for every run to become final.
    var timeout: Duration = .seconds(600)

    static let usage = """
        Usage: sluice-doc-indexer-demo [OPTIONS]

        Indexes every file under a directory with Sluice: enqueues one index-file run per file (half
        from SQL through psql, half from Swift), runs a worker process and a coordinator until every
        run is final, and prints a summary.

        Options:
          --docs DIR         Directory tree to index. Default: /usr/share/doc
          --database URL     PostgreSQL connection string or postgresql:// URL of a database where the
                             sluice extension can be created. Default: an embedded server in
                             DIR/postgres (see --directory), started and stopped by the demo
          --directory DIR    Directory for local state: the embedded server, the generated SQL file and
                             the worker log. Default: .sluice
          --limit N          Index at most the first N files found, in path order. Default: all files
          --slots N          Worker slots (runs executing at once), 1 to 1000. Default: 8
          --timeout SECONDS  Longest wait for every run to become final. Default: 600
          --keep-server      Leave the embedded server running at the end. Default: stop it
          --help             Show this help.

        Exit status: 0 when every run reached a final state (failed runs of unreadable files are
        expected and reported), 1 on an error or timeout, 2 for an invalid command line.

        """

    /// Parses `arguments` (without the program name).
    ///
    /// - Throws: `DemoError` with exit status 2 naming the invalid argument.
    static func parse(_ arguments: [String]) throws -> DemoOptions {
        var options = DemoOptions()
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            switch argument {
            case "--docs":
                options.docsDirectory = try value(of: argument, from: &remaining)
            case "--database":
                options.databaseURL = try value(of: argument, from: &remaining)
            case "--directory":
                options.stateDirectory = try value(of: argument, from: &remaining)
            case "--limit":
                options.limit = try integer(of: argument, from: &remaining, in: 1...10_000_000)
            case "--slots":
                options.slots = try integer(of: argument, from: &remaining, in: 1...1000)
            case "--timeout":
                options.timeout = .seconds(try integer(of: argument, from: &remaining, in: 1...86_400))
            case "--keep-server":
                options.keepServer = true
            case "--help", "-h":
                print(usage, terminator: "")
                exit(0)
            default:
                throw DemoError.usage("unknown argument '\(argument)'")
            }
        }
        return options
    }

    private static func value(of option: String, from remaining: inout ArraySlice<String>) throws -> String {
        guard let value = remaining.popFirst() else {
            throw DemoError.usage("\(option) needs a value")
        }
        return value
    }

    private static func integer(
        of option: String, from remaining: inout ArraySlice<String>, in range: ClosedRange<Int>
    ) throws -> Int {
        let text = try value(of: option, from: &remaining)
        guard let number = Int(text), range.contains(number) else {
            throw DemoError.usage(
                "invalid \(option) '\(text)'; expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }
}

/// A failure that ends the demo, with the exit status to use.
struct DemoError: Error, CustomStringConvertible {
    var message: String
    var exitStatus: Int32 = 1

    var description: String { message }

    static func usage(_ message: String) -> DemoError {
        DemoError(message: message, exitStatus: 2)
    }
}
