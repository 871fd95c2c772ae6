/// The subcommands of `sluice`, their options and the functions that run them.
enum CommandSpecs {
    static let databaseOption = OptionSpec.value(
        "database", "URL",
        "PostgreSQL connection string or postgresql:// URL. Default: $DATABASE_URL, else libpq's "
            + "PGHOST, PGDATABASE and related variables.")

    static let jsonOption = OptionSpec.flag("json", "Print JSON instead of a table.")

    static let commands: [CommandSpec] = [
        CommandSpec(
            name: "dev",
            summary: "Start a local PostgreSQL with the extension and run the coordinator until Ctrl-C.",
            options: [
                .value("directory", "DIR", "Project directory for local state; the server lives in DIR/postgres. Default: .sluice"),
                .value("port", "N", "Port number of the server; it names the Unix socket file, no TCP port is opened. Default: 5432"),
            ],
            usesDatabase: false),
        CommandSpec(name: "install", summary: "Create the sluice extension in the database (CREATE EXTENSION)."),
        CommandSpec(name: "upgrade", summary: "Update the sluice extension to the installed version (ALTER EXTENSION ... UPDATE)."),
        CommandSpec(
            name: "coordinator", summary: "Run the coordinator until SIGINT or SIGTERM.",
            options: [
                .value("tick-limit", "N", "Maximum number of rows of each kind one tick handles, 1 to 100000. Default: 1000"),
                .flag("verbose", "Also log each tick that did work and each maintenance run."),
            ]),
        CommandSpec(
            name: "enqueue", summary: "Enqueue a run of TASK with the JSON object INPUT and print its run id.",
            arguments: [("TASK", "task name"), ("INPUT", "JSON object, such as '{\"to\": \"a@example.com\"}'")],
            options: [
                .value("priority", "N", "Priority 0 to 9, higher first. Default: the task's priority"),
                .value("delay", "DURATION", "Wait before the run may start: 500ms, 10s, 5m or 1h. Default: none"),
                .value("idempotency-key", "KEY", "Key that makes a repeated enqueue return the first run's id. Default: none"),
            ]),
        CommandSpec(
            name: "runs", summary: "List recent runs, newest first.",
            options: [
                .value("status", "LIST", "Only runs in these states, comma-separated, such as queued,running. Default: all"),
                .value("task", "NAME", "Only runs of this task. Default: all tasks"),
                .value("limit", "N", "Maximum number of runs to list, 1 to 10000. Default: 50"),
                jsonOption,
            ]),
        CommandSpec(
            name: "run", summary: "Show one run: state, input, output or error, and its timeline.",
            arguments: [("ID", "run id")], options: [jsonOption]),
        CommandSpec(
            name: "cancel", summary: "Cancel a run that has not finished.",
            arguments: [("ID", "run id")],
            options: [.value("reason", "TEXT", "Reason stored in the run's error. Default: cancelled")]),
        CommandSpec(
            name: "workers", summary: "List workers from sluice.worker_status.",
            options: [.flag("all", "Include stopped workers. Default: only active and silent ones"), jsonOption]),
        CommandSpec(
            name: "tick", summary: "Do the coordinator's time-driven work once and print the counts.",
            options: [.value("limit", "N", "Maximum number of rows of each kind to handle, 1 to 100000. Default: 1000")]),
        FlowControlCommands.rateLimitsSpec,
        FlowControlCommands.concurrencySpec,
    ]

    static let parser = ArgumentParser(commands: commands, globalOptions: [databaseOption], otherCommandNames: ["schedules"])

    /// Runs subcommand `name`, which the parser has accepted.
    static func run(_ name: String, _ context: CommandContext) async throws -> ExitCode {
        switch name {
        case "dev": return try await DevCommand.run(context)
        case "install": return try await ExtensionCommands.install(context)
        case "upgrade": return try await ExtensionCommands.upgrade(context)
        case "coordinator": return try await CoordinatorCommand.run(context)
        case "enqueue": return try await RunCommands.enqueue(context)
        case "runs": return try await RunCommands.list(context)
        case "run": return try await RunCommands.show(context)
        case "cancel": return try await RunCommands.cancel(context)
        case "workers": return try await WorkersCommand.run(context)
        case "tick": return try await ExtensionCommands.tick(context)
        case "rate-limits": return try await FlowControlCommands.rateLimits(context)
        case "concurrency": return try await FlowControlCommands.concurrency(context)
        default: throw CommandLineUsageError(message: "unknown command '\(name)'", command: nil)
        }
    }
}

/// The `--help` texts.
enum HelpText {
    /// The meaning of exit code 3 for each command that can return it.
    private static let notFoundCauses = [
        "enqueue": "the task is not defined",
        "runs": "the --task is not defined",
        "run": "no run has that id",
        "cancel": "no run has that id",
        "concurrency": "the --task is not defined",
        "rate-limits": "no rate limit has that key",
    ]

    /// Returns the exit codes that `command` can return, or those of every command when it is nil.
    static func exitCodes(for command: CommandSpec?) -> String {
        var text = "Exit codes:\n  0  success\n"
        switch command?.name {
        case nil:
            text += """
                  1  failure: a database error, the run had already finished (cancel), or a
                     server is already running in the directory (dev)

                """
        case "cancel":
            text += "  1  failure: a database error, or the run had already finished\n"
        case "dev":
            text += "  1  failure: a database error, or a server is already running in the directory\n"
        default:
            text += "  1  failure: a database error\n"
        }
        text += """
              2  usage error: unknown command or option, missing or invalid value, invalid
                 connection string, or a value the database rejects (SQLSTATE SL002, SL004,
                 SL100, SL101, 22P02)

            """
        if let command {
            if let cause = notFoundCauses[command.name] {
                text += "  3  not found: \(cause)\n"
            }
        } else {
            text += "  3  not found: unknown run id, task, schedule or rate limit key\n"
        }
        if command?.usesDatabase ?? true {
            text += "  4  database unreachable\n"
        }
        return text + "\n"
    }

    static func overview() -> String {
        var text = "Usage: sluice [--database URL] COMMAND [OPTIONS]\n\nSluice, a durable task queue inside PostgreSQL.\n\nCommands:\n"
        let width = CommandSpecs.commands.map(\.name.count).max() ?? 0
        for command in CommandSpecs.commands {
            text += "  " + command.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(command.summary)\n"
        }
        text += "  " + "schedules".padding(toLength: width, withPad: " ", startingAt: 0)
            + "  Manage cron schedules: list, create, pause, resume, delete (see 'sluice schedules --help').\n"
        text += "\nGlobal options:\n" + optionLines([CommandSpecs.databaseOption, .flag("help", "Show help; after a command, that command's help.")])
        text += "\n" + exitCodes(for: nil)
        return text
    }

    static func help(for command: CommandSpec) -> String {
        let arguments = command.arguments.map { " \($0.name)" }.joined()
        var text = "Usage: sluice \(command.name)\(arguments) [OPTIONS]\n\n\(command.summary)\n"
        if !command.arguments.isEmpty {
            text += "\nArguments:\n"
            let width = command.arguments.map(\.name.count).max() ?? 0
            for argument in command.arguments {
                text += "  " + argument.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(argument.help)\n"
            }
        }
        let databaseOptions = command.usesDatabase ? [CommandSpecs.databaseOption] : []
        text += "\nOptions:\n" + optionLines(command.options + databaseOptions + [.flag("help", "Show this help.")])
        text += "\n" + exitCodes(for: command)
        return text
    }

    private static func optionLines(_ options: [OptionSpec]) -> String {
        let labels = options.map { option in "--\(option.name)" + (option.valueName.map { " \($0)" } ?? "") }
        let width = labels.map(\.count).max() ?? 0
        return zip(labels, options).map { label, option in
            "  " + label.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(option.help)\n"
        }.joined()
    }
}
