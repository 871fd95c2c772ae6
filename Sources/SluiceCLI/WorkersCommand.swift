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
                    + "w.running || '/' || w.slots, "
                    + "(SELECT coalesce(sum(l.slot_cost), 0) FROM sluice.leases l WHERE l.worker_id = w.id) || '/' || w.slots, "
                    + "to_char(w.heartbeat_at, 'YYYY-MM-DD HH24:MI:SS'), array_to_string(w.tasks, ','), w.labels::text \(filter)",
                [includeStopped])
            context.console.printTable(
                header: ["ID", "NAME", "HOST", "PID", "STATE", "RUNNING", "SLOTS USED", "HEARTBEAT (UTC)", "TASKS", "LABELS"],
                rows: rows.map { row in (0..<10).map { row.text(at: $0) ?? "" } })
            return .success
        }
    }
}
