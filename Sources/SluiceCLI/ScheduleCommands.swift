import Foundation
import SluicePostgres

/// `sluice schedules list|create|pause|resume|delete`: manages cron schedules through the SQL
/// functions of `sql/50_schedules.sql`.
///
/// `CommandLineTool.run` calls `run(_:tool:)` with the arguments after `schedules`. It returns
/// the exit codes of the other commands (see `ExitCode`), because it reports database errors
/// through `CommandLineTool.report`.
enum ScheduleCommands {
    static let usage = """
        Usage: sluice schedules <command> [options]

        Manage cron schedules. Each fire time of a schedule enqueues one run of its task.

        Commands:
          list                      List schedules with their state and next fire time.
          create NAME               Create a schedule, or update the one named NAME.
          pause NAME                Stop a schedule from firing.
          resume NAME               Resume a paused schedule at its next fire time after now.
          delete NAME               Delete a schedule and its fire history; its runs are kept.

        Options of create:
          --cron EXPRESSION         Cron expression: 5 fields, 6 fields with seconds first, or a
                                    macro such as @hourly. Required.
          --task TASK               The task each fire time runs. Required.
          --input JSON              Input object of every run. Default {}.
          --time-zone ZONE          IANA time zone the expression is read in. Default UTC.
          --missed POLICY           Fire times missed while no coordinator ran: latest (the most
                                    recent one, default), all (each one, at most 1000) or skip.
          --priority N              Priority of the runs, 0 to 9. Default: the task's priority.
          --metadata JSON           Metadata object of every run. Default {}.

        Options of every command:
          --database URL            libpq connection string or postgresql:// URL. Default: the
                                    DATABASE_URL environment variable, then PGHOST, PGDATABASE, ...
          --help                    Show this help.
        """

    /// Runs one schedules command and returns the exit status. It prints through `tool`'s
    /// console, reads `DATABASE_URL` from its environment and reports database errors as the
    /// other commands do.
    static func run(_ arguments: [String], tool: CommandLineTool) async -> Int32 {
        let console = tool.console
        let parsed: ParsedArguments
        do {
            parsed = try ParsedArguments(arguments)
        } catch {
            printUsageError(error, console: console)
            return ExitCode.usage.rawValue
        }
        if parsed.options["help"] != nil || parsed.command == nil {
            console.print(usage)
            return parsed.command == nil && parsed.options["help"] == nil ? ExitCode.usage.rawValue : 0
        }
        // Usage errors come before the connection, so they exit with 2 whether or not the
        // database can be reached.
        do {
            try parsed.check()
        } catch {
            printUsageError(error, console: console)
            return ExitCode.usage.rawValue
        }

        let databaseOption = parsed.options["database"]
        let connectionString = tool.connectionString(databaseOption: databaseOption)
        do {
            return try await CommandLineTool.withConnection(connectionString) { connection in
                try await execute(parsed, on: connection, console: console)
            }
        } catch let error as UsageError {
            printUsageError(error, console: console)
            return ExitCode.usage.rawValue
        } catch let error as PostgresError {
            return tool.report(error, command: "schedules", databaseOption: databaseOption).rawValue
        } catch {
            console.printError("sluice schedules: \(error)")
            return ExitCode.failure.rawValue
        }
    }

    /// The commands after `sluice schedules`.
    static let commands = ["list", "create", "pause", "resume", "delete"]

    /// Prints a usage error in the form of the other commands' usage errors.
    private static func printUsageError(_ error: Error, console: Console) {
        console.printError("sluice schedules: \(error)")
        console.printError("Run 'sluice schedules --help' for usage.")
    }

    private static func execute(
        _ parsed: ParsedArguments, on connection: PostgresConnection, console: Console
    ) async throws -> Int32 {
        switch parsed.command {
        case "list":
            try parsed.expectNames(0)
            try await list(on: connection, console: console)
        case "create":
            let name = try parsed.expectNames(1)[0]
            let next = try await connection.query(
                "SELECT sluice.create_schedule($1, $2, $3, $4::jsonb, $5, $6::jsonb, $7, $8)",
                [
                    name, try parsed.required("cron"), try parsed.required("task"), parsed.options["input"] ?? "{}",
                    parsed.options["time-zone"] ?? "UTC", parsed.options["metadata"] ?? "{}",
                    try parsed.integer("priority", in: 0...9), parsed.options["missed"] ?? "latest",
                ])[0].text(at: 0)
            console.print("schedule \(name) saved; next fire time: \(next ?? "none, the schedule is paused")")
        case "pause":
            let name = try parsed.expectNames(1)[0]
            let changed = try await connection.query("SELECT sluice.pause_schedule($1)", [name])[0].decode(Bool.self, at: 0)
            console.print(changed ? "schedule \(name) paused" : "schedule \(name) was already paused")
        case "resume":
            let name = try parsed.expectNames(1)[0]
            let next = try await connection.query("SELECT sluice.resume_schedule($1)", [name])[0].text(at: 0)
            console.print("schedule \(name) resumed; next fire time: \(next ?? "unknown")")
        case "delete":
            let name = try parsed.expectNames(1)[0]
            try await connection.execute("SELECT sluice.delete_schedule($1)", [name])
            console.print("schedule \(name) deleted")
        default:
            throw UsageError.unknownCommand(parsed.command ?? "")
        }
        return 0
    }

    /// Prints the schedules as a table with one row each.
    private static func list(on connection: PostgresConnection, console: Console) async throws {
        let rows = try await connection.query(
            """
            SELECT name, expression, time_zone, task, missed, state, coalesce(next_fire_at::text, '-'),
                   coalesce(last_fired_at::text, '-'), coalesce(last_run_status::text, '-'),
                   coalesce(paused_reason, '')
            FROM sluice.schedule_status ORDER BY name
            """)
        let header = ["NAME", "CRON", "TIME ZONE", "TASK", "MISSED", "STATE", "NEXT FIRE", "LAST FIRE", "LAST RUN",
                      "REASON"]
        let table = [header] + rows.map { row in (0..<header.count).map { row.text(at: $0) ?? "" } }
        let widths = (0..<header.count).map { column in table.map { $0[column].count }.max() ?? 0 }
        for line in table {
            let cells = line.enumerated().map { column, cell in
                column == line.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }
            console.print(cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        if rows.isEmpty {
            console.print("(no schedules; create one with 'sluice schedules create')")
        }
    }
}

/// A mistake in the command line, reported with exit status 2.
private struct UsageError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }

    static func unknownCommand(_ command: String) -> UsageError {
        UsageError("unknown command '\(command)' for 'sluice schedules'; the commands are list, create, pause, resume and delete")
    }
}

/// The command, positional names and `--option value` pairs after `sluice schedules`.
private struct ParsedArguments {
    /// Options that take a value, with the placeholder of the value. `--help` takes none.
    static let valueOptions: [String: String] = [
        "cron": "EXPRESSION", "task": "TASK", "input": "JSON", "time-zone": "ZONE", "missed": "POLICY",
        "priority": "N", "metadata": "JSON", "database": "URL",
    ]

    var command: String?
    var names: [String] = []
    var options: [String: String] = [:]

    init(_ arguments: [String]) throws {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else {
                if command == nil {
                    command = argument
                } else {
                    names.append(argument)
                }
                continue
            }
            let body = argument.dropFirst(2)
            let option = String(body.prefix { $0 != "=" })
            if option == "help" {
                options["help"] = ""
                continue
            }
            guard let valueName = Self.valueOptions[option] else {
                throw UsageError("unknown option --\(option) for 'sluice schedules'")
            }
            if body.contains("=") {
                options[option] = String(body.drop { $0 != "=" }.dropFirst())
                continue
            }
            guard index < arguments.count else {
                throw UsageError("missing value for --\(option) \(valueName)")
            }
            options[option] = arguments[index]
            index += 1
        }
    }

    /// Throws a usage error for an unknown command, a wrong number of names, or a missing or
    /// invalid option of `create`.
    func check() throws {
        guard let command, ScheduleCommands.commands.contains(command) else {
            throw UsageError.unknownCommand(command ?? "")
        }
        try expectNames(command == "list" ? 0 : 1)
        if command == "create" {
            _ = try required("cron")
            _ = try required("task")
            _ = try integer("priority", in: 0...9)
        }
    }

    /// Returns the positional names, throwing unless there are exactly `count` (0 or 1).
    @discardableResult
    func expectNames(_ count: Int) throws -> [String] {
        let commandLine = "'sluice schedules \(command ?? "")'"
        if names.count < count {
            throw UsageError("missing argument NAME for \(commandLine)")
        }
        if names.count > count {
            throw UsageError("unexpected argument '\(names[count...].joined(separator: " "))' for \(commandLine)")
        }
        return names
    }

    func required(_ option: String) throws -> String {
        guard let value = options[option] else {
            throw UsageError(
                "missing --\(option) \(Self.valueOptions[option] ?? "VALUE") for 'sluice schedules \(command ?? "")'")
        }
        return value
    }

    /// Returns an integer option within `range`, nil when absent, or throws a usage error.
    func integer(_ option: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = options[option] else {
            return nil
        }
        guard let value = Int(text), range.contains(value) else {
            throw UsageError(
                "invalid value '\(text)' for --\(option); expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}
