import EmbeddedPostgres
import Foundation
import Sluice
import SluiceCoordinator
import SluicePostgres

/// `dev`: a local PostgreSQL with the extension and an in-process coordinator.
enum DevCommand {
    static func run(_ context: CommandContext) async throws -> ExitCode {
        let directory = context.parsed.value("directory") ?? ".sluice"
        let port = try context.integer("port", default: 5432, in: 1...65535)!
        let logger = StandardErrorLogger()

        let server = try await startServer(projectDirectory: directory, port: port, logger: logger)
        let connectionString = server.connectionString(database: "sluice")
        do {
            try await prepareDatabase(on: server)
            context.console.print("PostgreSQL with the sluice extension is running. Connect with:")
            context.console.print("  " + exportCommand(connectionString))
            context.console.print("Press Ctrl-C to stop the coordinator and the server.")
            try await CoordinatorCommand.runUntilSignal(
                connectionString: connectionString, options: CoordinatorOptions(), logger: logger)
        } catch {
            try? await offCooperativePool { try server.stop() }
            throw error
        }
        logger.info("stopping PostgreSQL", ["directory": server.directory.path])
        try await offCooperativePool { try server.stop() }
        return .success
    }

    /// Returns the shell command that sets and exports DATABASE_URL, with the value in double
    /// quotes and `\`, `"`, `$` and `` ` `` escaped, so it can be pasted into sh or bash.
    static func exportCommand(_ connectionString: String) -> String {
        var quoted = ""
        for character in connectionString {
            if "\\\"$`".contains(character) {
                quoted.append("\\")
            }
            quoted.append(character)
        }
        return "export DATABASE_URL=\"\(quoted)\""
    }

    /// Starts (creating it on first use) the server in `projectDirectory/postgres`, which is a
    /// symbolic link to a directory under /tmp when the postgres user cannot reach the project.
    static func startServer(projectDirectory: String, port: Int, logger: any SluiceLogger) async throws -> EmbeddedPostgres {
        let base = URL(fileURLWithPath: projectDirectory, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        let location = try ProjectServerDirectory.prepare(projectDirectory: base)
        if let note = location.redirectionNote {
            logger.info(note)
        }
        let directory = location.directory
        // A Unix socket path holds at most 107 bytes on Linux.
        let socketPath = directory.path + "/.s.PGSQL.\(port)"
        guard socketPath.utf8.count <= 107 else {
            throw CommandError(
                message: "the socket path \(socketPath) is longer than 107 bytes; pass a shorter --directory",
                exitCode: .usage)
        }
        let server = EmbeddedPostgres(directory: directory, port: port)
        // `dev` stops the server on exit, so it must never take over a server that another
        // `dev` (or anyone else) started in the same directory, on this port or another one.
        if let pid = server.runningServerPID {
            throw alreadyRunning(location.projectPath, pid: pid)
        }
        logger.info("starting PostgreSQL", ["directory": directory.path])
        // A server started on this port between the check above and this call makes
        // startIfStopped return false. On another port, pg_ctl start fails on the lock file.
        guard try await offCooperativePool({ try server.startIfStopped() }) else {
            throw alreadyRunning(location.projectPath, pid: server.runningServerPID)
        }
        return server
    }

    /// Returns the error for a server already running in the project's server directory, which
    /// exits with 1.
    static func alreadyRunning(_ directory: URL, pid: Int32?) -> CommandError {
        CommandError(
            message: "a PostgreSQL server is already running in \(directory.path)"
                + (pid.map { " (pid \($0))" } ?? "") + "; stop it or pass another --directory")
    }

    /// Creates database `sluice` when missing and the extension in it.
    static func prepareDatabase(on server: EmbeddedPostgres) async throws {
        let admin = try await PostgresConnection.connect(server.connectionString, applicationName: "sluice-dev")
        let exists = try await admin.query("SELECT 1 FROM pg_database WHERE datname = 'sluice'").count == 1
        await admin.close()
        if !exists {
            try await server.createDatabase("sluice")
        }
        let connection = try await PostgresConnection.connect(server.connectionString(database: "sluice"), applicationName: "sluice-dev")
        defer { Task { await connection.close() } }
        try await connection.execute("CREATE EXTENSION IF NOT EXISTS sluice")
    }

    /// Runs blocking server commands on a dispatch thread, not on Swift's cooperative pool.
    static func offCooperativePool<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try work() })
            }
        }
    }
}
