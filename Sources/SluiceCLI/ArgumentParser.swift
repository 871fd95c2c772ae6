/// A command-line option: `--name value`, `--name=value`, or a flag that takes no value.
struct OptionSpec: Sendable {
    /// The name without the leading dashes.
    var name: String
    /// The placeholder shown in help for the value, or nil for a flag.
    var valueName: String?
    /// What the option sets, with its unit and default.
    var help: String

    static func flag(_ name: String, _ help: String) -> OptionSpec {
        OptionSpec(name: name, valueName: nil, help: help)
    }

    static func value(_ name: String, _ valueName: String, _ help: String) -> OptionSpec {
        OptionSpec(name: name, valueName: valueName, help: help)
    }
}

/// A subcommand: its name, positional arguments and options.
struct CommandSpec: Sendable {
    var name: String
    var summary: String
    /// Positional arguments in order, as (placeholder, description); all are required.
    var arguments: [(name: String, help: String)] = []
    var options: [OptionSpec] = []
    /// Whether arguments beyond `arguments` are accepted and checked by the command itself.
    var acceptsMoreArguments = false
    /// Whether the command connects to a database and so takes the global `--database`.
    var usesDatabase = true
}

/// The result of parsing: the chosen subcommand, its positional arguments and option values.
struct ParsedCommand: Sendable, Equatable {
    var command: String?
    var arguments: [String] = []
    /// Option values by name; a flag that was given has the value "true".
    var values: [String: String] = [:]
    /// Whether `--help` or `-h` was given.
    var wantsHelp = false

    func value(_ name: String) -> String? {
        values[name]
    }

    func flag(_ name: String) -> Bool {
        values[name] != nil
    }
}

/// A command line that does not match the commands' specifications; exit code 2.
struct CommandLineUsageError: Error, Equatable {
    var message: String
    /// The subcommand whose help the message points to, if known.
    var command: String?
}

/// Parses command lines against a fixed set of subcommands and global options.
struct ArgumentParser: Sendable {
    var commands: [CommandSpec]
    var globalOptions: [OptionSpec]
    /// Commands that parse their own arguments, such as `schedules`. The parser only names them
    /// in the unknown-command message.
    var otherCommandNames: [String] = []

    func command(named name: String) -> CommandSpec? {
        commands.first { $0.name == name }
    }

    /// Returns the index of the command name: the first argument that is neither an option
    /// nor the value of a global option such as `--database URL`. Returns nil when there is none.
    func commandIndex(in arguments: [String]) -> Int? {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                return index + 1 < arguments.count ? index + 1 : nil
            }
            guard argument.hasPrefix("-"), argument.count > 1 else {
                return index
            }
            let name = String(argument.dropFirst(2).prefix { $0 != "=" })
            let takesValue = globalOptions.contains { $0.name == name && $0.valueName != nil }
            index += takesValue && !argument.contains("=") ? 2 : 1
        }
        return nil
    }

    /// Parses `arguments` (without the program name). Global options and `--help` may appear
    /// anywhere; `--` ends the options.
    func parse(_ arguments: [String]) throws -> ParsedCommand {
        var parsed = ParsedCommand()
        var spec: CommandSpec?
        var index = 0
        var optionsEnded = false

        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if !optionsEnded, argument == "--" {
                optionsEnded = true
                continue
            }
            if !optionsEnded, argument == "--help" || argument == "-h" {
                parsed.wantsHelp = true
                continue
            }
            if !optionsEnded, argument.hasPrefix("--") {
                let body = argument.dropFirst(2)
                let name = String(body.prefix { $0 != "=" })
                let inlineValue = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
                guard let option = (spec?.options ?? []).first(where: { $0.name == name })
                    ?? globalOptions.first(where: { $0.name == name })
                else {
                    throw CommandLineUsageError(message: "unknown option --\(name)" + forCommand(spec), command: spec?.name)
                }
                if option.valueName == nil {
                    if inlineValue != nil {
                        throw CommandLineUsageError(message: "option --\(name) takes no value", command: spec?.name)
                    }
                    parsed.values[name] = "true"
                    continue
                }
                if let inlineValue {
                    parsed.values[name] = inlineValue
                } else if index < arguments.count {
                    parsed.values[name] = arguments[index]
                    index += 1
                } else {
                    throw CommandLineUsageError(
                        message: "missing value for --\(name) \(option.valueName!): \(option.help)", command: spec?.name)
                }
                continue
            }
            if !optionsEnded, argument.hasPrefix("-"), argument.count > 1, Double(argument) == nil {
                throw CommandLineUsageError(message: "unknown option \(argument)" + forCommand(spec), command: spec?.name)
            }
            if spec == nil {
                guard let found = command(named: argument) else {
                    throw CommandLineUsageError(
                        message: "unknown command '\(argument)'; commands are "
                            + (commands.map(\.name) + otherCommandNames).joined(separator: ", "),
                        command: nil)
                }
                spec = found
                parsed.command = argument
            } else {
                parsed.arguments.append(argument)
            }
        }

        if let spec, !spec.usesDatabase, parsed.value("database") != nil {
            throw CommandLineUsageError(
                message: "option --database does not apply to 'sluice \(spec.name)', which starts its own server",
                command: spec.name)
        }
        if let spec, !parsed.wantsHelp {
            try checkArgumentCount(parsed.arguments, for: spec)
        }
        return parsed
    }

    private func checkArgumentCount(_ arguments: [String], for spec: CommandSpec) throws {
        if arguments.count < spec.arguments.count {
            let missing = spec.arguments[arguments.count...].map(\.name).joined(separator: " ")
            throw CommandLineUsageError(message: "missing argument \(missing) for 'sluice \(spec.name)'", command: spec.name)
        }
        if arguments.count > spec.arguments.count && !spec.acceptsMoreArguments {
            let extra = arguments[spec.arguments.count...].joined(separator: " ")
            throw CommandLineUsageError(message: "unexpected argument '\(extra)' for 'sluice \(spec.name)'", command: spec.name)
        }
    }

    private func forCommand(_ spec: CommandSpec?) -> String {
        spec.map { " for 'sluice \($0.name)'" } ?? ""
    }
}
