import Foundation
import SluicePostgres

/// `rate-limits` and `concurrency`: inspect and manage flow control.
enum FlowControlCommands {
    static let rateLimitsSpec = CommandSpec(
        name: "rate-limits",
        summary: "Manage rate limits: list | set KEY LIMIT PERIOD | delete KEY | pause KEY --until DURATION | resume KEY.",
        arguments: [("ACTION", "list, set, delete, pause or resume, followed by its arguments")],
        options: [
            .value("until", "DURATION", "With pause: how long the limit admits nothing, such as 30s, 5m or 1h"),
            CommandSpecs.jsonOption,
        ],
        acceptsMoreArguments: true)

    static let concurrencySpec = CommandSpec(
        name: "concurrency", summary: "List concurrency keys with their running and waiting runs.",
        options: [.value("task", "NAME", "Only keys of this task. Default: all tasks"), CommandSpecs.jsonOption])

    /// The actions of `rate-limits` and the arguments each takes after the action.
    private static let actions: [String: [String]] = [
        "list": [], "set": ["KEY", "LIMIT", "PERIOD"], "delete": ["KEY"], "pause": ["KEY"], "resume": ["KEY"],
    ]

    static func rateLimits(_ context: CommandContext) async throws -> ExitCode {
        let action = context.parsed.arguments[0]
        let rest = Array(context.parsed.arguments.dropFirst())
        guard let expected = actions[action] else {
            throw CommandLineUsageError(
                message: "unknown action '\(action)'; the actions are list, set, delete, pause and resume",
                command: "rate-limits")
        }
        if rest.count != expected.count {
            throw CommandLineUsageError(
                message: "'sluice rate-limits \(action)' takes \(expected.isEmpty ? "no arguments" : expected.joined(separator: " ")); "
                    + "got \(rest.count)",
                command: "rate-limits")
        }
        if action == "pause" && context.parsed.value("until") == nil {
            throw CommandLineUsageError(
                message: "missing --until for 'sluice rate-limits pause'; give a duration such as 30s", command: "rate-limits")
        }
        return try await context.withConnection { connection in
            switch action {
            case "set":
                guard let limit = Int(rest[1]), (1...1_000_000_000).contains(limit) else {
                    throw CommandLineUsageError(
                        message: "invalid LIMIT '\(rest[1])'; expected a whole number from 1 to 1000000000",
                        command: "rate-limits")
                }
                try await connection.execute("SELECT sluice.set_rate_limit($1, $2, $3)", [rest[0], limit, rest[2]])
                context.console.print("rate limit \(rest[0]) set to \(limit) per \(rest[2])")
            case "delete":
                let rows = try await connection.query("SELECT sluice.delete_rate_limit($1)", [rest[0]])
                guard try rows[0].decode(Bool.self, at: 0) else {
                    throw CommandError(message: "rate limit '\(rest[0])' does not exist", exitCode: .notFound)
                }
                context.console.print("rate limit \(rest[0]) deleted; its waiting runs moved to the ready queue")
            case "pause":
                let milliseconds = try DurationParser.milliseconds(context.parsed.value("until")!, option: "until")
                let rows = try await reportingUnknownKey {
                    try await connection.query(
                        "SELECT sluice.pause_rate_limit($1, sluice.now() + $2::interval), "
                            + "to_char(sluice.now() + $2::interval, 'YYYY-MM-DD HH24:MI:SS')",
                        [rest[0], DurationParser.intervalText(milliseconds: milliseconds)])
                }
                context.console.print("rate limit \(rest[0]) paused until \(rows[0].text(at: 1) ?? "?") UTC")
            case "resume":
                try await reportingUnknownKey {
                    try await connection.execute("SELECT sluice.resume_rate_limit($1)", [rest[0]])
                }
                context.console.print("rate limit \(rest[0]) resumed")
            default:
                try await listRateLimits(context, connection)
            }
            return .success
        }
    }

    /// Runs `body` and turns the server's "rate limit ... does not exist" into exit code 3,
    /// as `delete` reports an unknown key. The server raises it with SL004, the SQLSTATE of
    /// invalid values, so only the message distinguishes it.
    @discardableResult
    private static func reportingUnknownKey<Value>(_ body: () async throws -> Value) async throws -> Value {
        do {
            return try await body()
        } catch let error as PostgresError
            where error.sqlState == "SL004" && error.message.hasPrefix("rate limit ") && error.message.hasSuffix(" does not exist")
        {
            throw CommandError(message: error.message, exitCode: .notFound)
        }
    }

    private static func listRateLimits(_ context: CommandContext, _ connection: PostgresConnection) async throws {
        if context.parsed.flag("json") {
            let rows = try await connection.query(
                "SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.key), '[]')::text FROM sluice.rate_limit_status r")
            context.console.print(try rows[0].decode(String.self, at: 0))
            return
        }
        let rows = try await connection.query(
            """
            SELECT key, max_units::text,
                   CASE period WHEN '1 second' THEN 'second' WHEN '1 minute' THEN 'minute'
                               WHEN '1 hour' THEN 'hour' WHEN '1 day' THEN 'day' ELSE period::text END,
                   CASE WHEN dynamic THEN 'per key' ELSE 'static' END,
                   to_char(available_units, 'FM999999999990.00'),
                   coalesce(to_char(next_refill_at, 'YYYY-MM-DD HH24:MI:SS.MS'), '-'), waiting::text,
                   coalesce(to_char(paused_until, 'YYYY-MM-DD HH24:MI:SS'), '-')
            FROM sluice.rate_limit_status ORDER BY key
            """)
        // The next refill shows milliseconds because a limit of more than one unit per second
        // refills several times a second. It is "-" for a full bucket.
        context.console.printTable(
            header: ["KEY", "LIMIT", "PERIOD", "KIND", "AVAILABLE", "NEXT REFILL (UTC)", "WAITING", "PAUSED UNTIL (UTC)"],
            rows: rows.map { row in (0..<8).map { row.text(at: $0) ?? "" } })
    }

    static func concurrency(_ context: CommandContext) async throws -> ExitCode {
        let task = context.parsed.value("task")
        return try await context.withConnection { connection in
            try await context.requireDefinedTask(task, on: connection)
            let filter = "FROM sluice.concurrency_status c WHERE $1::text IS NULL OR c.task = $1"
            if context.parsed.flag("json") {
                let rows = try await connection.query(
                    "SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.task, c.rule, c.key), '[]')::text \(filter)", [task])
                context.console.print(try rows[0].decode(String.self, at: 0))
                return .success
            }
            let rows = try await connection.query(
                "SELECT c.task, c.rule::text, c.key, c.running || '/' || c.max_running, c.waiting::text \(filter) "
                    + "ORDER BY c.task, c.rule, c.key",
                [task])
            context.console.printTable(
                header: ["TASK", "RULE", "KEY", "RUNNING", "WAITING"],
                rows: rows.map { row in (0..<5).map { row.text(at: $0) ?? "" } })
            return .success
        }
    }
}
