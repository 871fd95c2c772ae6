import SluicePostgres

/// `enqueue`, `runs`, `run` and `cancel`.
enum RunCommands {
    static func enqueue(_ context: CommandContext) async throws -> ExitCode {
        let task = context.parsed.arguments[0]
        let input = context.parsed.arguments[1]
        let priority = try context.integer("priority", default: nil, in: 0...9)
        let delay = try context.parsed.value("delay").map {
            DurationParser.intervalText(milliseconds: try DurationParser.milliseconds($0, option: "delay"))
        }
        let key = context.parsed.value("idempotency-key")
        return try await context.withConnection { connection in
            let rows = try await connection.query(
                "SELECT sluice.enqueue($1, $2::jsonb, priority => $3, delay => $4::interval, idempotency_key => $5)",
                [task, input, priority, delay, key])
            context.console.print(String(try rows[0].decode(Int64.self, at: 0)))
            return .success
        }
    }

    static func list(_ context: CommandContext) async throws -> ExitCode {
        let limit = try context.integer("limit", default: 50, in: 1...10_000)!
        let task = context.parsed.value("task")
        let statusText = context.parsed.value("status")
        return try await context.withConnection { connection in
            var statuses: [String]?
            if let statusText {
                statuses = try await checkedStatuses(statusText, connection: connection)
            }
            try await context.requireDefinedTask(task, on: connection)
            let filter = "FROM sluice.runs r WHERE ($1::text[] IS NULL OR r.status::text = ANY ($1)) "
                + "AND ($2::text IS NULL OR r.task = $2) ORDER BY r.id DESC LIMIT $3"
            if context.parsed.flag("json") {
                let rows = try await connection.query(
                    "SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.id DESC), '[]')::text FROM ("
                        + "SELECT r.id, r.task, r.queue, r.status, r.attempt, r.priority, r.created_at, "
                        + "r.started_at, r.finished_at \(filter)) x",
                    [statuses, task, limit])
                context.console.print(try rows[0].decode(String.self, at: 0))
                return .success
            }
            let rows = try await connection.query(
                "SELECT r.id::text, r.task, r.status::text, r.attempt::text, r.priority::text, "
                    + "to_char(r.created_at, 'YYYY-MM-DD HH24:MI:SS'), "
                    + "coalesce(to_char(r.finished_at, 'YYYY-MM-DD HH24:MI:SS'), '-') \(filter)",
                [statuses, task, limit])
            let table = rows.map { row in (0..<7).map { row.text(at: $0) ?? "" } }
            context.console.printTable(
                header: ["ID", "TASK", "STATUS", "ATTEMPT", "PRIORITY", "CREATED (UTC)", "FINISHED (UTC)"], rows: table)
            if table.count == limit {
                context.console.printError("(stopped at --limit \(limit); a larger --limit, up to 10000, may show more)")
            }
            return .success
        }
    }

    static func show(_ context: CommandContext) async throws -> ExitCode {
        let id = try context.runID(at: 0)
        return try await context.withConnection { connection in
            let rows = try await connection.query(
                "SELECT jsonb_build_object('id', r.id, 'task', r.task, 'queue', r.queue, 'status', r.status, "
                    + "'attempt', r.attempt, 'max_attempts', r.max_attempts, 'priority', r.priority, "
                    + "'created_at', r.created_at, 'run_at', r.run_at, 'started_at', r.started_at, "
                    + "'finished_at', r.finished_at, 'worker_id', r.worker_id, 'idempotency_key', r.idempotency_key, "
                    + "'input', r.input, 'metadata', r.metadata, 'output', r.output, 'error', r.error, "
                    + "'timeline', (SELECT coalesce(jsonb_agg(jsonb_build_object('event', t.event, 'at', t.at, "
                    + "'attempt', t.attempt, 'detail', t.detail) ORDER BY t.at, t.event), '[]') "
                    + "FROM sluice.run_timeline t WHERE t.run_id = r.id))::text, "
                    + "r.task, r.status::text, r.attempt::text || ' of ' || r.max_attempts, r.input::text, "
                    + "r.output::text, r.error::text, r.metadata::text "
                    + "FROM sluice.runs r WHERE r.id = $1", [id])
            guard let row = rows.first else {
                throw CommandError(message: "run \(id) not found", exitCode: .notFound)
            }
            if context.parsed.flag("json") {
                context.console.print(try row.decode(String.self, at: 0))
                return .success
            }
            context.console.print("run \(id)")
            context.console.print("  task:     \(row.text(at: 1) ?? "")")
            context.console.print("  status:   \(row.text(at: 2) ?? "")")
            context.console.print("  attempt:  \(row.text(at: 3) ?? "")")
            context.console.print("  input:    \(row.text(at: 4) ?? "")")
            if let metadata = row.text(at: 7), metadata != "{}" {
                context.console.print("  metadata: \(metadata)")
            }
            if let output = row.text(at: 5) {
                context.console.print("  output:   \(output)")
            }
            if let error = row.text(at: 6) {
                context.console.print("  error:    \(error)")
            }
            let timeline = try await connection.query(
                "SELECT to_char(t.at, 'YYYY-MM-DD HH24:MI:SS.MS'), t.event, coalesce(t.attempt::text, ''), "
                    + "coalesce(t.detail::text, '') FROM sluice.run_timeline t WHERE t.run_id = $1 ORDER BY t.at, t.event",
                [id])
            context.console.print("timeline:")
            context.console.printTable(
                header: ["  AT (UTC)", "EVENT", "ATTEMPT", "DETAIL"],
                rows: timeline.map { row in ["  " + (row.text(at: 0) ?? "")] + (1..<4).map { row.text(at: $0) ?? "" } })
            return .success
        }
    }

    static func cancel(_ context: CommandContext) async throws -> ExitCode {
        let id = try context.runID(at: 0)
        let reason = context.parsed.value("reason")
        return try await context.withConnection { connection in
            let rows = try await connection.query(
                "SELECT sluice.cancel($1, $2), (SELECT r.status::text FROM sluice.runs r WHERE r.id = $1)", [id, reason])
            if try rows[0].decode(Bool.self, at: 0) {
                context.console.print("cancelled run \(id)")
                return .success
            }
            let status = rows[0].text(at: 1) ?? "unknown"
            throw CommandError(message: "run \(id) was not cancelled because it had already finished with status \(status)")
        }
    }

    /// Splits a comma-separated status list and checks each against the states of
    /// `sluice.run_status`, so the list stays right when the extension adds states.
    static func checkedStatuses(_ text: String, connection: PostgresConnection) async throws -> [String] {
        let allowed = try await connection.query("SELECT unnest(enum_range(NULL::sluice.run_status))::text")
            .map { try $0.decode(String.self, at: 0) }
        let statuses = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for status in statuses where !allowed.contains(status) {
            throw CommandLineUsageError(
                message: "invalid status '\(status)' for --status; expected one or more of \(allowed.joined(separator: ", "))",
                command: "runs")
        }
        if statuses.isEmpty {
            throw CommandLineUsageError(message: "empty --status; expected one or more of \(allowed.joined(separator: ", "))", command: "runs")
        }
        return statuses
    }
}
