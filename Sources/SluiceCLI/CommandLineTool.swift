import Foundation
import SluicePostgres

/// The `sluice` command: parses the command line, runs one subcommand and returns its exit
/// code. Everything it prints goes through `console`, so tests can run it in-process.
struct CommandLineTool: Sendable {
    var console: Console
    var environment: [String: String]

    /// Runs the command line `arguments` (without the program name) and returns the exit code.
    func run(_ arguments: [String]) async -> ExitCode {
        // `schedules` has subcommands of its own and parses the rest of the line itself.
        if let index = CommandSpecs.parser.commandIndex(in: arguments), arguments[index] == "schedules" {
            var rest = arguments
            rest.remove(at: index)
            let status = await ScheduleCommands.run(rest, tool: self)
            return ExitCode(rawValue: status) ?? .failure
        }
        let parsed: ParsedCommand
        do {
            parsed = try CommandSpecs.parser.parse(arguments)
        } catch let error as CommandLineUsageError {
            console.printError("sluice\(error.command.map { " \($0)" } ?? ""): \(error.message)")
            console.printError("Run 'sluice \(error.command.map { "\($0) " } ?? "")--help' for usage.")
            return .usage
        } catch {
            console.printError("sluice: \(error)")
            return .usage
        }

        guard let name = parsed.command else {
            console.writeOutput(HelpText.overview())
            return parsed.wantsHelp ? .success : .usage
        }
        let spec = CommandSpecs.parser.command(named: name)!
        if parsed.wantsHelp {
            console.writeOutput(HelpText.help(for: spec))
            return .success
        }

        let databaseOption = parsed.value("database")
        let context = CommandContext(
            console: console, parsed: parsed, connectionString: connectionString(databaseOption: databaseOption))
        do {
            return try await CommandSpecs.run(name, context)
        } catch let error as CommandLineUsageError {
            console.printError("sluice \(name): \(error.message)")
            console.printError("Run 'sluice \(name) --help' for usage.")
            return .usage
        } catch let error as CommandError {
            console.printError("sluice \(name): \(error.message)")
            return error.exitCode
        } catch let error as PostgresError {
            return report(error, command: name, databaseOption: databaseOption)
        } catch {
            console.printError("sluice \(name): \(error)")
            return .failure
        }
    }

    /// Opens a connection for one command, runs `body` and closes the connection. A lost
    /// connection is not reopened.
    static func withConnection<Value>(
        _ connectionString: String?, _ body: (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        try await PostgresConnection.withConnection(
            connectionString, applicationName: "sluice-cli", reconnectPolicy: ReconnectPolicy(maximumAttempts: 1), body)
    }

    /// Returns the `--database` value, else `DATABASE_URL`, else nil for libpq's own
    /// environment variables (PGHOST, PGDATABASE, ...).
    func connectionString(databaseOption: String?) -> String? {
        connectionSource(databaseOption: databaseOption).map { $0.value }
    }

    /// Returns where the connection string comes from, as the name to show in messages and the
    /// value, or nil when neither `--database` nor `DATABASE_URL` is set.
    func connectionSource(databaseOption: String?) -> (name: String, value: String)? {
        if let databaseOption, !databaseOption.isEmpty {
            return ("--database", databaseOption)
        }
        if let value = environment["DATABASE_URL"], !value.isEmpty {
            return ("DATABASE_URL", value)
        }
        return nil
    }

    /// The message for a database without the extension, which exits with 1.
    static let extensionNotInstalledMessage =
        "the sluice extension is not installed in this database; run 'sluice install' first"

    /// Prints a database error with its DETAIL and HINT lines and maps it to an exit code.
    /// `databaseOption` is the `--database` value, if any, which connection errors name.
    func report(_ error: PostgresError, command: String, databaseOption: String?) -> ExitCode {
        if error.isConnectionError {
            return reportConnectionError(error, command: command, databaseOption: databaseOption)
        }
        if Self.isExtensionMissing(error) {
            console.printError("sluice \(command): \(Self.extensionNotInstalledMessage)")
            return .failure
        }
        console.printError("sluice \(command): \(error.message)")
        if let detail = error.detail {
            console.printError("DETAIL: \(detail)")
        }
        if let hint = error.hint {
            console.printError("HINT: \(hint)")
        }
        return Self.exitCode(for: error)
    }

    /// Prints a failed connection with libpq's message on lines of its own. A connection string
    /// that libpq cannot parse is a usage error (2); any other failure exits with 4.
    private func reportConnectionError(_ error: PostgresError, command: String, databaseOption: String?) -> ExitCode {
        let source = connectionSource(databaseOption: databaseOption)
        let libpqMessage = error.message.trimmingCharacters(in: .whitespacesAndNewlines)
        if error.kind == .connectionFailed, let source, PostgresConnection.connectionStringError(source.value) != nil {
            console.printError("sluice \(command): invalid connection string in \(source.name):")
            console.printError(libpqMessage)
            return .usage
        }
        console.printError("sluice \(command): could not connect to the database" + (source.map { " given by \($0.name)" } ?? "") + ":")
        console.printError(libpqMessage)
        if source == nil {
            console.printError("Pass --database URL or set DATABASE_URL.")
        }
        return .databaseUnreachable
    }

    /// Returns whether `error` comes from a missing schema `sluice` (3F000) or a missing table
    /// or view in it (42P01), which means that the extension is not installed.
    static func isExtensionMissing(_ error: PostgresError) -> Bool {
        switch error.sqlState {
        case "3F000": return error.message.contains("schema \"sluice\"")
        case "42P01": return error.message.contains("\"sluice.")
        default: return false
        }
    }

    /// Maps a server error to an exit code by its SQLSTATE.
    static func exitCode(for error: PostgresError) -> ExitCode {
        switch error.sqlState {
        // Unknown task (SL001), run (SL003) or schedule (SL102).
        case "SL001", "SL003", "SL102":
            return .notFound
        // A value from the command line that the server rejected: an invalid option (SL004),
        // an invalid input or metadata object (SL002), an invalid cron expression (SL100) or
        // time zone (SL101), or an invalid text representation such as malformed JSON (22P02).
        case "SL004", "SL002", "SL100", "SL101", "22P02":
            return .usage
        default:
            return .failure
        }
    }
}

/// A failure that a command reports with its own message and exit code.
struct CommandError: Error {
    var message: String
    var exitCode: ExitCode = .failure
}

/// What a subcommand needs: the output, its parsed command line and the connection string.
struct CommandContext: Sendable {
    var console: Console
    var parsed: ParsedCommand
    var connectionString: String?

    /// Opens a connection for one command, runs `body` and closes the connection. A lost
    /// connection is not reopened.
    func withConnection<Value>(_ body: (PostgresConnection) async throws -> Value) async throws -> Value {
        try await CommandLineTool.withConnection(connectionString, body)
    }

    /// Throws a not-found error (exit 3) when `task` is given and names no defined task, so that
    /// a filter by a misspelt task does not print an empty table.
    func requireDefinedTask(_ task: String?, on connection: PostgresConnection) async throws {
        guard let task else {
            return
        }
        let rows = try await connection.query("SELECT EXISTS (SELECT FROM sluice.tasks WHERE name = $1)", [task])
        if try !rows[0].decode(Bool.self, at: 0) {
            throw CommandError(message: "task '\(task)' is not defined", exitCode: .notFound)
        }
    }

    /// Returns an integer option within `range`, `defaultValue` when absent, or throws a usage error.
    func integer(_ name: String, default defaultValue: Int?, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = parsed.value(name) else {
            return defaultValue
        }
        guard let value = Int(text), range.contains(value) else {
            throw CommandLineUsageError(
                message: "invalid value '\(text)' for --\(name); expected a whole number from "
                    + "\(range.lowerBound) to \(range.upperBound)",
                command: parsed.command)
        }
        return value
    }

    /// Returns positional argument `index` as a run id, or throws a usage error.
    func runID(at index: Int) throws -> Int64 {
        let text = parsed.arguments[index]
        guard let id = Int64(text), id > 0 else {
            throw CommandLineUsageError(message: "invalid run id '\(text)'; expected a positive whole number", command: parsed.command)
        }
        return id
    }
}
