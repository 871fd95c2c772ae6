import EmbeddedPostgres
import Foundation
import SluicePostgres

/// The database the demo runs against: the one given with `--database`, or database `sluice`
/// on an embedded server in `<state directory>/postgres`, prepared as `sluice dev` does.
struct DemoDatabase {
    /// The libpq connection string of the database.
    let connectionString: String
    /// The embedded server when the demo started it, to stop at the end; nil otherwise.
    let startedServer: EmbeddedPostgres?

    /// Connects to `databaseURL`, or starts the embedded server when it is nil, then creates
    /// the sluice extension when it is missing.
    ///
    /// - Throws: `DemoError` naming what failed: the server start, the connection, or
    ///   `CREATE EXTENSION` (the extension must be installed with `make install-extension`).
    static func open(databaseURL: String?, stateDirectory: URL) async throws -> DemoDatabase {
        if let databaseURL {
            try await createExtension(connectionString: databaseURL)
            return DemoDatabase(connectionString: databaseURL, startedServer: nil)
        }

        let location = try ProjectServerDirectory.prepare(projectDirectory: stateDirectory)
        if let note = location.redirectionNote {
            say(note)
        }
        let socketPath = location.directory.path + "/.s.PGSQL.5432"
        guard socketPath.utf8.count <= 107 else {
            throw DemoError(
                message: "the socket path \(socketPath) is longer than 107 bytes; pass a shorter --directory")
        }
        let server = EmbeddedPostgres(directory: location.directory)
        let wasRunning = try await offCooperativePool { server.isRunning }
        if wasRunning {
            say("Using the PostgreSQL server already running in \(location.directory.path).")
        } else {
            say("Starting PostgreSQL in \(location.directory.path) ...")
            try await offCooperativePool { try server.start() }
        }
        do {
            try await createDatabaseIfMissing("sluice", on: server)
            let connectionString = server.connectionString(database: "sluice")
            try await createExtension(connectionString: connectionString)
            return DemoDatabase(connectionString: connectionString, startedServer: wasRunning ? nil : server)
        } catch {
            if !wasRunning {
                try? await offCooperativePool { try server.stop() }
            }
            throw error
        }
    }

    /// Stops the embedded server if the demo started it.
    func stopServer() async throws {
        guard let server = startedServer else { return }
        try await offCooperativePool { try server.stop() }
    }

    private static func createDatabaseIfMissing(_ name: String, on server: EmbeddedPostgres) async throws {
        let admin = try await PostgresConnection.connect(server.connectionString, applicationName: "doc-indexer-demo")
        let rows = try await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])
        await admin.close()
        if rows.count == 0 {
            try await server.createDatabase(name)
        }
    }

    private static func createExtension(connectionString: String) async throws {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(connectionString, applicationName: "doc-indexer-demo")
        } catch {
            throw DemoError(message: "cannot connect to the database: \(error)")
        }
        do {
            try await connection.execute("CREATE EXTENSION IF NOT EXISTS sluice")
        } catch {
            await connection.close()
            throw DemoError(
                message: "CREATE EXTENSION sluice failed: \(error); install it with 'make install-extension'")
        }
        await connection.close()
    }
}

/// Runs blocking work, such as the server commands, on a dispatch thread rather than on
/// Swift's cooperative thread pool.
func offCooperativePool<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try work() })
        }
    }
}
