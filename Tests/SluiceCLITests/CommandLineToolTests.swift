import Foundation
import SluicePostgres
import SluiceTestSupport
import Testing

@testable import SluiceCLI

/// Collects what a command prints.
final class CapturedConsole: @unchecked Sendable {
    // @unchecked: `output` and `errors` are guarded by `lock`.
    private let lock = NSLock()
    private var output = ""
    private var errors = ""

    var console: Console {
        Console(
            writeOutput: { text in self.lock.withLock { self.output += text } },
            writeError: { text in self.lock.withLock { self.errors += text } })
    }

    var printed: String { lock.withLock { output } }
    var errorText: String { lock.withLock { errors } }
}

/// Runs `sluice` in-process with `arguments` against `database`.
func runTool(_ arguments: [String], database: String?) async -> (ExitCode, CapturedConsole) {
    let captured = CapturedConsole()
    var environment: [String: String] = [:]
    environment["DATABASE_URL"] = database
    let tool = CommandLineTool(console: captured.console, environment: environment)
    return (await tool.run(arguments), captured)
}

@Suite(.timeLimit(.minutes(1))) struct CommandLineToolTests {
    @Test func enqueueRunsRunCancelEndToEnd() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let connection = try await database.connect()
        try await connection.execute("SELECT sluice.define_task('send-mail')")
        let url = database.connectionString

        let (enqueueCode, enqueued) = await runTool(["enqueue", "send-mail", "{\"to\": \"a@example.com\"}", "--priority", "4"], database: url)
        #expect(enqueueCode == .success)
        let runID = try #require(Int64(enqueued.printed.trimmingCharacters(in: .whitespacesAndNewlines)))

        let (delayedCode, delayed) = await runTool(
            ["enqueue", "send-mail", "{}", "--delay=10s", "--idempotency-key", "k1"], database: url)
        #expect(delayedCode == .success)
        let delayedID = try #require(Int64(delayed.printed.trimmingCharacters(in: .whitespacesAndNewlines)))
        let (_, repeated) = await runTool(["enqueue", "send-mail", "{}", "--delay=10s", "--idempotency-key", "k1"], database: url)
        #expect(repeated.printed.trimmingCharacters(in: .whitespacesAndNewlines) == String(delayedID))

        let (runsCode, runs) = await runTool(["runs", "--status", "queued"], database: url)
        #expect(runsCode == .success)
        #expect(runs.printed.contains("send-mail"))
        #expect(runs.printed.contains(String(runID)))
        #expect(!runs.printed.contains("scheduled"))

        let (jsonCode, json) = await runTool(["runs", "--json", "--task", "send-mail"], database: url)
        #expect(jsonCode == .success)
        let decoded = try JSONSerialization.jsonObject(with: Data(json.printed.utf8)) as? [[String: Any]]
        #expect(decoded?.count == 2)

        let (showCode, shown) = await runTool(["run", String(runID)], database: url)
        #expect(showCode == .success)
        #expect(shown.printed.contains("queued"))
        #expect(shown.printed.contains("a@example.com"))
        #expect(shown.printed.contains("enqueued"))

        let (cancelCode, _) = await runTool(["cancel", String(runID), "--reason", "not needed"], database: url)
        #expect(cancelCode == .success)
        let (againCode, again) = await runTool(["cancel", String(runID)], database: url)
        #expect(againCode == .failure)
        #expect(again.errorText.contains("already finished"))

        let (shownJSONCode, shownJSON) = await runTool(["run", String(runID), "--json"], database: url)
        #expect(shownJSONCode == .success)
        let detail = try JSONSerialization.jsonObject(with: Data(shownJSON.printed.utf8)) as? [String: Any]
        #expect(detail?["status"] as? String == "cancelled")
        #expect((detail?["timeline"] as? [Any])?.count == 2)

        await connection.close()
    }

    @Test func runsNamesUnknownTaskAndLimit() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        try await PostgresConnection.withConnection(database.connectionString) { connection in
            try await connection.execute("SELECT sluice.define_task('send-mail')")
            try await connection.execute("SELECT sluice.enqueue_many('send-mail', ARRAY['{}', '{}']::jsonb[])")
        }
        let (unknownCode, unknown) = await runTool(["runs", "--task", "no-such-task"], database: database.connectionString)
        #expect(unknownCode == .notFound)
        #expect(unknown.errorText == "sluice runs: task 'no-such-task' is not defined\n")
        let (concurrencyCode, concurrency) = await runTool(
            ["concurrency", "--task", "no-such-task"], database: database.connectionString)
        #expect(concurrencyCode == .notFound)
        #expect(concurrency.errorText == "sluice concurrency: task 'no-such-task' is not defined\n")

        let (limitedCode, limited) = await runTool(["runs", "--limit", "1"], database: database.connectionString)
        #expect(limitedCode == .success)
        #expect(limited.errorText == "(stopped at --limit 1; a larger --limit, up to 10000, may show more)\n")
        let (allCode, all) = await runTool(["runs"], database: database.connectionString)
        #expect(allCode == .success)
        #expect(all.errorText.isEmpty)
    }

    @Test func runShowsMetadata() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        try await PostgresConnection.withConnection(database.connectionString) { connection in
            try await connection.execute("SELECT sluice.define_task('send-mail')")
            let rows = try await connection.query(
                "SELECT sluice.enqueue('send-mail', '{}', metadata => '{\"job\": \"j-7\"}')")
            let runID = try rows[0].decode(Int64.self, at: 0)

            let (code, shown) = await runTool(["run", String(runID)], database: database.connectionString)
            #expect(code == .success)
            #expect(shown.printed.contains("  metadata: {\"job\": \"j-7\"}\n"))
            let (_, json) = await runTool(["run", String(runID), "--json"], database: database.connectionString)
            let detail = try JSONSerialization.jsonObject(with: Data(json.printed.utf8)) as? [String: Any]
            #expect((detail?["metadata"] as? [String: Any])?["job"] as? String == "j-7")
        }
    }

    @Test func unknownIdsExitNotFound() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let url = database.connectionString
        let (runCode, run) = await runTool(["run", "999999"], database: url)
        #expect(runCode == .notFound)
        #expect(run.errorText.contains("run 999999 not found"))
        let (cancelCode, _) = await runTool(["cancel", "999999"], database: url)
        #expect(cancelCode == .notFound)
        let (taskCode, task) = await runTool(["enqueue", "no-such-task", "{}"], database: url)
        #expect(taskCode == .notFound)
        #expect(task.errorText.contains("no-such-task"))
    }

    @Test func badValuesExitUsage() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let url = database.connectionString
        let (priorityCode, priority) = await runTool(["enqueue", "t", "{}", "--priority", "12"], database: url)
        #expect(priorityCode == .usage)
        #expect(priority.errorText.contains("'12'"))
        let (statusCode, status) = await runTool(["runs", "--status", "queued,done"], database: url)
        #expect(statusCode == .usage)
        #expect(status.errorText.contains("'done'"))
        let (idCode, _) = await runTool(["run", "abc"], database: url)
        #expect(idCode == .usage)
        let (delayCode, _) = await runTool(["enqueue", "t", "{}", "--delay", "soon"], database: url)
        #expect(delayCode == .usage)
    }

    @Test func databaseErrorPrintsDetail() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let (code, captured) = await runTool(["rate-limits", "set", "stripe", "10", "week"], database: database.connectionString)
        #expect(code == .usage)
        #expect(captured.errorText.contains("sluice rate-limits: invalid rate limit period: 'week'\n"))
        #expect(captured.errorText.contains("DETAIL: The periods are second, minute, hour and day.\n"))
    }

    @Test(arguments: [
        (["enqueue", "t", "{"], "invalid input syntax for type json"),  // 22P02
        (["enqueue", "t", "[1]"], "must be a JSON object, not array"),  // SL002
    ])
    func rejectedValuesExitUsage(arguments: [String], message: String) async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let connection = try await database.connect()
        try await connection.execute("SELECT sluice.define_task('t')")
        await connection.close()
        let (code, captured) = await runTool(arguments, database: database.connectionString)
        #expect(code == .usage)
        #expect(captured.errorText.contains(message))
    }

    @Test func schedulesRejectedValuesExitUsage() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let connection = try await database.connect()
        try await connection.execute("SELECT sluice.define_task('t')")
        await connection.close()
        let url = database.connectionString
        let (cronCode, _) = await runTool(["schedules", "create", "s", "--cron", "61 * * * *", "--task", "t"], database: url)
        #expect(cronCode == .usage)
        let (zoneCode, _) = await runTool(
            ["schedules", "create", "s", "--cron", "@hourly", "--task", "t", "--time-zone", "Mars/Olympus"], database: url)
        #expect(zoneCode == .usage)
        let (missedCode, _) = await runTool(
            ["schedules", "create", "s", "--cron", "@hourly", "--task", "t", "--missed", "never"], database: url)
        #expect(missedCode == .usage)
    }

    @Test(arguments: ["0", "1000000001", "ten"])
    func rateLimitSetRejectsLimit(limit: String) async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let (code, captured) = await runTool(["rate-limits", "set", "stripe", limit, "minute"], database: database.connectionString)
        #expect(code == .usage)
        #expect(captured.errorText.contains("invalid LIMIT '\(limit)'; expected a whole number from 1 to 1000000000"))
    }

    @Test(arguments: [
        (["schedules", "create"], "missing argument NAME for 'sluice schedules create'"),
        (["schedules", "create", "a", "b"], "unexpected argument 'b' for 'sluice schedules create'"),
        (["schedules", "list", "x"], "unexpected argument 'x' for 'sluice schedules list'"),
        (["schedules", "create", "s", "--task", "t"], "missing --cron EXPRESSION for 'sluice schedules create'"),
        (
            ["schedules", "create", "s", "--task", "t", "--cron", "@hourly", "--priority", "abc"],
            "invalid value 'abc' for --priority; expected a whole number from 0 to 9"
        ),
        (
            ["schedules", "create", "s", "--task", "t", "--cron", "@hourly", "--priority", "10"],
            "invalid value '10' for --priority; expected a whole number from 0 to 9"
        ),
        (["schedules", "frob"], "unknown command 'frob' for 'sluice schedules'; the commands are list, create, pause, resume and delete"),
        (["schedules", "list", "--frob"], "unknown option --frob for 'sluice schedules'"),
        (["schedules", "create", "s", "--cron"], "missing value for --cron EXPRESSION"),
    ])
    func schedulesUsageErrors(arguments: [String], message: String) async {
        // The database is unreachable: usage errors are found before connecting.
        let (code, captured) = await runTool(arguments, database: "host=/nonexistent-sluice-socket-dir port=1 dbname=x")
        #expect(code == .usage)
        #expect(captured.errorText == "sluice schedules: \(message)\nRun 'sluice schedules --help' for usage.\n")
    }

    @Test func schedulesDatabaseErrorHasPrefix() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let (code, captured) = await runTool(["schedules", "pause", "no-such-schedule"], database: database.connectionString)
        #expect(code == .notFound)
        #expect(captured.errorText.hasPrefix("sluice schedules: schedule 'no-such-schedule' does not exist\n"))
    }

    @Test func unknownRateLimitExitsNotFound() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let url = database.connectionString
        let (pauseCode, paused) = await runTool(["rate-limits", "pause", "nokey", "--until", "5s"], database: url)
        #expect(pauseCode == .notFound)
        #expect(paused.errorText.contains("rate limit 'nokey' does not exist"))
        let (resumeCode, resumed) = await runTool(["rate-limits", "resume", "nokey"], database: url)
        #expect(resumeCode == .notFound)
        #expect(resumed.errorText.contains("rate limit 'nokey' does not exist"))
        let (deleteCode, _) = await runTool(["rate-limits", "delete", "nokey"], database: url)
        #expect(deleteCode == .notFound)
    }

    @Test func schedulesExitCodesMatchOtherCommands() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let url = database.connectionString
        let (unknownCode, _) = await runTool(["schedules", "pause", "no-such-schedule", "--database", url], database: url)
        #expect(unknownCode == .notFound)
        let (unreachableCode, _) = await runTool(
            ["schedules", "list", "--database", "host=/nonexistent-sluice-socket-dir port=1 dbname=x"], database: nil)
        #expect(unreachableCode == .databaseUnreachable)
    }

    @Test func schedulesAfterGlobalDatabaseOption() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let url = database.connectionString
        let (beforeCode, _) = await runTool(["--database", url, "schedules", "list"], database: nil)
        #expect(beforeCode == .success)
        let (equalsCode, _) = await runTool(["--database=\(url)", "schedules", "list"], database: nil)
        #expect(equalsCode == .success)
    }

    @Test(arguments: [["runs"], ["run", "1"], ["enqueue", "t", "{}"], ["workers"], ["tick"], ["rate-limits", "list"], ["schedules", "list"]])
    func missingExtensionSaysInstall(arguments: [String]) async throws {
        let database = try await TestPostgres.shared.makeDatabase(withExtension: false)
        let (code, captured) = await runTool(arguments, database: database.connectionString)
        #expect(code == .failure)
        #expect(captured.errorText.contains(": the sluice extension is not installed in this database; run 'sluice install' first\n"))
    }

    @Test func unreachableDatabaseExitsFour() async {
        let (code, captured) = await runTool(["runs"], database: "host=/nonexistent-sluice-socket-dir port=1 dbname=x")
        #expect(code == .databaseUnreachable)
        #expect(captured.errorText.contains("could not connect"))
    }

    @Test(arguments: ["garbage===", "host='unterminated", "postgresql://%zz@/db"])
    func unparsableConnectionStringExitsUsage(connectionString: String) async {
        let (optionCode, option) = await runTool(["runs", "--database", connectionString], database: nil)
        #expect(optionCode == .usage)
        #expect(option.errorText.hasPrefix("sluice runs: invalid connection string in --database:\n"))
        #expect(!option.errorText.contains("pass --database"))

        let (environmentCode, environment) = await runTool(["schedules", "list"], database: connectionString)
        #expect(environmentCode == .usage)
        #expect(environment.errorText.hasPrefix("sluice schedules: invalid connection string in DATABASE_URL:\n"))
    }

    /// libpq parses `port=abc` and rejects the value only when it connects, so the CLI reports
    /// it as a failed connection, with libpq's message naming the option and the value.
    @Test func invalidOptionValueExitsUnreachable() async {
        let (code, captured) = await runTool(["runs", "--database", "host=/tmp port=abc"], database: nil)
        #expect(code == .databaseUnreachable)
        #expect(captured.errorText.contains("invalid integer value \"abc\" for connection option \"port\""))
    }

    @Test func connectionAdviceOnlyWithoutConnectionString() {
        let failure = PostgresError(
            kind: .connectionFailed, message: "connection to server on socket \"/x/.s.PGSQL.1\" failed: No such file or directory\n")

        let withoutString = CapturedConsole()
        let code = CommandLineTool(console: withoutString.console, environment: [:])
            .report(failure, command: "runs", databaseOption: nil)
        #expect(code == .databaseUnreachable)
        #expect(
            withoutString.errorText == "sluice runs: could not connect to the database:\n"
                + "connection to server on socket \"/x/.s.PGSQL.1\" failed: No such file or directory\n"
                + "Pass --database URL or set DATABASE_URL.\n")

        let withEnvironment = CapturedConsole()
        _ = CommandLineTool(console: withEnvironment.console, environment: ["DATABASE_URL": "host=/x"])
            .report(failure, command: "runs", databaseOption: nil)
        #expect(withEnvironment.errorText.hasPrefix("sluice runs: could not connect to the database given by DATABASE_URL:\n"))
        #expect(!withEnvironment.errorText.contains("Pass --database"))
    }

    @Test func tablesLabelTimesUTC() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let connection = try await database.connect()
        try await connection.execute("ALTER DATABASE \(database.name) SET TimeZone TO 'Asia/Tokyo'")
        try await connection.execute("SELECT sluice.define_task('t')")
        let runID = try await connection.query("SELECT sluice.enqueue('t', '{}')")[0].decode(Int64.self, at: 0)
        try await connection.execute("SELECT sluice.set_rate_limit('stripe', 10, 'minute')")
        let createdUTC = try await connection.query(
            "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM sluice.runs WHERE id = $1", [runID]
        )[0].decode(String.self, at: 0)
        await connection.close()
        let url = database.connectionString

        let (_, runs) = await runTool(["runs"], database: url)
        #expect(runs.printed.contains("CREATED (UTC)"))
        #expect(runs.printed.contains("FINISHED (UTC)"))
        #expect(runs.printed.contains(createdUTC))
        let (_, run) = await runTool(["run", String(runID)], database: url)
        #expect(run.printed.contains("AT (UTC)"))
        let (_, workers) = await runTool(["workers"], database: url)
        #expect(workers.printed.contains("HEARTBEAT (UTC)"))
        let (_, paused) = await runTool(["rate-limits", "pause", "stripe", "--until", "1m"], database: url)
        #expect(paused.printed.hasSuffix(" UTC\n"))
        let (_, limits) = await runTool(["rate-limits", "list"], database: url)
        #expect(limits.printed.contains("PAUSED UNTIL (UTC)"))
    }

    @Test func rateLimitsListShowsNextRefill() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let connection = try await database.connect()
        try await connection.execute("SELECT sluice.set_rate_limit('full', 10, 'minute')")
        try await connection.execute("SELECT sluice.set_rate_limit('used', 10, 'minute')")
        try await connection.execute("UPDATE sluice.rate_limits SET tokens = 0 WHERE key = 'used'")
        let nextRefill = try await connection.query(
            "SELECT to_char(next_refill_at, 'YYYY-MM-DD HH24:MI:SS') FROM sluice.rate_limit_status WHERE key = 'used'"
        )[0].decode(String.self, at: 0)
        await connection.close()

        let (code, captured) = await runTool(["rate-limits", "list"], database: database.connectionString)
        #expect(code == .success)
        // Cells are separated by two or more spaces, and a time contains a single space.
        let rows = captured.printed.split(separator: "\n").map { $0.split(separator: /\s{2,}/).map(String.init) }
        #expect(rows.count == 3)
        #expect(rows.first?[5] == "NEXT REFILL (UTC)")
        let full = try #require(rows.first { $0.first == "full" })
        let used = try #require(rows.first { $0.first == "used" })
        #expect(full[5] == "-")
        #expect(used[5].hasPrefix(nextRefill))
    }

    @Test func tickPrintsCounts() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let (code, captured) = await runTool(["tick", "--limit", "10"], database: database.connectionString)
        #expect(code == .success)
        #expect(captured.printed.contains("promoted=0"))
    }

    @Test func helpExitsZero() async {
        let (code, captured) = await runTool(["runs", "--help"], database: nil)
        #expect(code == .success)
        #expect(captured.printed.contains("--limit N"))
        let (noCommandCode, _) = await runTool([], database: nil)
        #expect(noCommandCode == .usage)
    }
}
