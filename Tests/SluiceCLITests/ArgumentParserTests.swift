import Testing

@testable import SluiceCLI

@Suite struct ArgumentParserTests {
    let parser = CommandSpecs.parser

    @Test func optionWithSeparateValue() throws {
        let parsed = try parser.parse(["runs", "--limit", "10", "--task", "send"])
        #expect(parsed.command == "runs")
        #expect(parsed.value("limit") == "10")
        #expect(parsed.value("task") == "send")
    }

    @Test func optionWithEqualsValue() throws {
        let parsed = try parser.parse(["runs", "--status=queued,running"])
        #expect(parsed.value("status") == "queued,running")
    }

    @Test func globalOptionBeforeCommand() throws {
        let parsed = try parser.parse(["--database", "postgresql:///x", "tick"])
        #expect(parsed.command == "tick")
        #expect(parsed.value("database") == "postgresql:///x")
    }

    @Test func commandIndexSkipsOptionValues() {
        #expect(parser.commandIndex(in: ["--database", "postgresql:///x", "schedules", "list"]) == 2)
        #expect(parser.commandIndex(in: ["--database=postgresql:///x", "schedules"]) == 1)
        #expect(parser.commandIndex(in: ["--help", "schedules"]) == 1)
        #expect(parser.commandIndex(in: ["schedules", "--database", "x"]) == 0)
        #expect(parser.commandIndex(in: ["--", "schedules"]) == 1)
        #expect(parser.commandIndex(in: ["--database", "x"]) == nil)
    }

    @Test func unknownCommandListsSchedules() {
        #expect(throws: CommandLineUsageError.self) { try parser.parse(["schedule"]) }
        do {
            _ = try parser.parse(["schedule"])
        } catch let error as CommandLineUsageError {
            #expect(error.message.hasPrefix("unknown command 'schedule'; commands are dev, install,"))
            #expect(error.message.hasSuffix(", concurrency, schedules"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func devRejectsDatabaseOption() {
        #expect(throws: CommandLineUsageError.self) { try parser.parse(["dev", "--database", "postgresql:///x"]) }
        #expect(throws: CommandLineUsageError.self) { try parser.parse(["--database=postgresql:///x", "dev"]) }
        #expect(throws: Never.self) { try parser.parse(["dev", "--directory", "d"]) }
    }

    @Test func flagsAndPositionals() throws {
        let parsed = try parser.parse(["enqueue", "send", "{\"a\": 1}", "--priority", "3"])
        #expect(parsed.arguments == ["send", "{\"a\": 1}"])
        #expect(parsed.value("priority") == "3")
        #expect(try parser.parse(["workers", "--all", "--json"]).flag("all"))
    }

    @Test func doubleDashEndsOptions() throws {
        let parsed = try parser.parse(["enqueue", "--", "--odd-task", "{}"])
        #expect(parsed.arguments == ["--odd-task", "{}"])
    }

    @Test func helpSkipsArgumentCheck() throws {
        let parsed = try parser.parse(["enqueue", "--help"])
        #expect(parsed.wantsHelp)
        #expect(parsed.command == "enqueue")
    }

    @Test func unknownOptionRejected() {
        #expect(throws: CommandLineUsageError.self) { try parser.parse(["runs", "--colour", "red"]) }
        #expect(throws: CommandLineUsageError.self) { try parser.parse(["runs", "-x"]) }
    }

    @Test func unknownCommandRejected() {
        #expect(throws: CommandLineUsageError.self) { try parser.parse(["frobnicate"]) }
    }

    @Test func missingValueRejected() {
        #expect(throws: CommandLineUsageError.self) { try parser.parse(["runs", "--limit"]) }
    }

    @Test func missingValueNamesCommandAndRange() async {
        let (code, captured) = await runTool(["runs", "--limit"], database: nil)
        #expect(code == .usage)
        #expect(captured.errorText.hasPrefix(
            "sluice runs: missing value for --limit N: Maximum number of runs to list, 1 to 10000. Default: 50\n"))
    }

    @Test func valueForFlagRejected() {
        #expect(throws: CommandLineUsageError.self) { try parser.parse(["runs", "--json=yes"]) }
    }

    @Test func argumentCountChecked() {
        #expect(throws: CommandLineUsageError.self) { try parser.parse(["enqueue", "send"]) }
        #expect(throws: CommandLineUsageError.self) { try parser.parse(["cancel", "1", "2"]) }
    }

    @Test func optionOfOtherCommandRejected() {
        #expect(throws: CommandLineUsageError.self) { try parser.parse(["tick", "--json"]) }
    }

    @Test func helpListsDatabaseOptionWhereUsed() {
        for command in CommandSpecs.commands {
            let help = HelpText.help(for: command)
            #expect(help.contains("--database URL") == command.usesDatabase, "help of \(command.name)")
            #expect(help.contains("Exit codes"), "help of \(command.name)")
        }
        #expect(CommandSpecs.commands.filter { !$0.usesDatabase }.map(\.name) == ["dev"])
    }

    @Test func helpListsOnlyTheCommandsExitCodes() throws {
        let help = { (name: String) in HelpText.help(for: try #require(CommandSpecs.parser.command(named: name))) }
        #expect(try help("cancel").contains("  1  failure: a database error, or the run had already finished\n"))
        #expect(try help("cancel").contains("  3  not found: no run has that id\n"))
        #expect(try !help("install").contains("  3  not found"))
        #expect(try help("install").contains("  4  database unreachable\n"))
        #expect(try !help("dev").contains("  4  database unreachable"))
        #expect(HelpText.overview().contains("  3  not found: unknown run id, task, schedule or rate limit key\n"))
    }
}

@Suite struct DurationParserTests {
    @Test func acceptedUnits() throws {
        #expect(try DurationParser.milliseconds("500ms", option: "delay") == 500)
        #expect(try DurationParser.milliseconds("10s", option: "delay") == 10_000)
        #expect(try DurationParser.milliseconds("5m", option: "delay") == 300_000)
        #expect(try DurationParser.milliseconds("1h", option: "delay") == 3_600_000)
        #expect(try DurationParser.milliseconds("0s", option: "delay") == 0)
    }

    @Test func invalidForms() {
        for text in ["", "10", "s", "1.5s", "-1s", "10 s", "1d", "10sec", "ms", "99999999999999999999h", "9223372036854775807h"] {
            #expect(throws: CommandLineUsageError.self, "\(text)") { try DurationParser.milliseconds(text, option: "delay") }
        }
    }

    @Test func errorNamesValueAndForms() {
        do {
            _ = try DurationParser.milliseconds("7x", option: "delay")
            Issue.record("7x was accepted")
        } catch let error as CommandLineUsageError {
            #expect(error.message.contains("'7x'"))
            #expect(error.message.contains("--delay"))
            #expect(error.message.contains("500ms"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}
