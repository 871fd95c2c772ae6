import SluicePostgres

/// `install`, `upgrade` and `tick`.
enum ExtensionCommands {
    static func install(_ context: CommandContext) async throws -> ExitCode {
        try await context.withConnection { connection in
            let before = try await installedVersion(connection)
            try await connection.execute("CREATE EXTENSION IF NOT EXISTS sluice")
            let after = try await installedVersion(connection)
            context.console.print("sluice extension: \(before ?? "not installed") -> \(after ?? "not installed")")
            return .success
        }
    }

    static func upgrade(_ context: CommandContext) async throws -> ExitCode {
        try await context.withConnection { connection in
            guard let before = try await installedVersion(connection) else {
                throw CommandError(message: CommandLineTool.extensionNotInstalledMessage)
            }
            try await connection.execute("ALTER EXTENSION sluice UPDATE")
            let after = try await installedVersion(connection) ?? "not installed"
            context.console.print(
                before == after ? "sluice extension: \(after) (already the newest installed version)"
                    : "sluice extension: \(before) -> \(after)")
            return .success
        }
    }

    static func tick(_ context: CommandContext) async throws -> ExitCode {
        let limit = try context.integer("limit", default: 1000, in: 1...100_000)!
        return try await context.withConnection { connection in
            let rows = try await connection.query("SELECT * FROM sluice.tick($1)", [limit])
            guard let row = rows.first else {
                return .success
            }
            let fields = row.columnNames.enumerated().map { index, name in "\(name)=\(row.text(at: index) ?? "none")" }
            context.console.print(fields.joined(separator: " "))
            return .success
        }
    }

    /// Returns the installed version of the extension, or nil when it is not installed.
    static func installedVersion(_ connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.query("SELECT extversion FROM pg_extension WHERE extname = 'sluice'")
        return try rows.first?.decode(String.self, at: 0)
    }
}
