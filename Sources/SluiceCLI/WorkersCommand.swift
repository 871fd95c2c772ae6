/// `workers`: the rows of `sluice.worker_status`.
enum WorkersCommand {
    static func run(_ context: CommandContext) async throws -> ExitCode {
        let includeStopped = context.parsed.flag("all")
        return try await context.withConnection { connection in
            let filter = "FROM sluice.worker_status w WHERE $1 OR w.state <> 'stopped' ORDER BY w.started_at DESC"
            if context.parsed.flag("json") {
                let rows = try await connection.query(
                    "SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.started_at DESC), '[]')::text FROM (SELECT w.* \(filter)) x",
                    [includeStopped])
                context.console.print(try rows[0].decode(String.self, at: 0))
                return .success
            }
            let rows = try await connection.query(
                "SELECT w.id::text, w.name, coalesce(w.hostname, '-'), coalesce(w.pid::text, '-'), w.state, "
                    + "w.running || '/' || w.slots, to_char(w.heartbeat_at, 'YYYY-MM-DD HH24:MI:SS'), "
                    + "array_to_string(w.tasks, ',') \(filter)",
                [includeStopped])
            context.console.printTable(
                header: ["ID", "NAME", "HOST", "PID", "STATE", "RUNNING", "HEARTBEAT", "TASKS"],
                rows: rows.map { row in (0..<8).map { row.text(at: $0) ?? "" } })
            return .success
        }
    }
}
