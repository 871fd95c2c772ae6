import EmbeddedPostgres
import Foundation
import SluicePostgres

/// The PostgreSQL server shared by all tests in one test process.
///
/// The server starts on first use in a fresh `/tmp/sluice-test-XXXXXX` directory with
/// `fsync=off` and `max_connections=300`, and stops with `pg_ctl stop -m immediate` when the
/// process exits normally. A killed test process leaves the server and its directory behind.
public actor TestPostgres {
    /// The instance shared by every test in the process.
    public static let shared = TestPostgres()

    /// Settings for test servers: no durability, many connections for parallel tests.
    public static let testSettings = ["fsync": "off", "max_connections": "300", "full_page_writes": "off"]

    private var serverTask: Task<EmbeddedPostgres, Error>?
    private var templateTask: Task<String, Error>?

    /// Returns the shared server, starting it on first use.
    public func server() async throws -> EmbeddedPostgres {
        if serverTask == nil {
            serverTask = Task {
                let server = try Self.makeServer()
                try await Self.offCooperativePool { try server.start() }
                ServersToStopAtExit.register(server)
                return server
            }
        }
        return try await serverTask!.value
    }

    /// Creates a database with a unique name on the shared server.
    ///
    /// - Parameter withExtension: when true (default) the database is cloned from a template
    ///   database that already has `CREATE EXTENSION sluice`, created once per process. The
    ///   extension must be installed in the server's directories (`make install-extension`).
    ///   When false the database is cloned from `template1`.
    public func makeDatabase(withExtension: Bool = true) async throws -> TestDatabase {
        let server = try await server()
        let template = withExtension ? try await extensionTemplate(on: server) : nil
        let name = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try await server.createDatabase(name, template: template)
        return TestDatabase(server: server, name: name)
    }

    /// Creates and starts a server of its own, for tests that stop or restart it. The caller
    /// stops it; it is also stopped when the process exits.
    ///
    /// Blocks for the 1 to 3 seconds that initdb and startup take; from async code, prefer
    /// running it through `offCooperativePool`.
    public nonisolated func makeDedicatedServer() throws -> EmbeddedPostgres {
        let server = try Self.makeServer()
        try server.start()
        ServersToStopAtExit.register(server)
        return server
    }

    /// Returns the name of the template database with the extension, creating it once.
    private func extensionTemplate(on server: EmbeddedPostgres) async throws -> String {
        if templateTask == nil {
            templateTask = Task {
                let name = "sluice_test_template"
                try await server.createDatabase(name)
                // CREATE DATABASE ... TEMPLATE fails while any session is connected to the
                // template, so the connection is closed before the template is used.
                try await PostgresConnection.withConnection(server.connectionString(database: name)) { connection in
                    _ = try await connection.execute("CREATE EXTENSION sluice")
                }
                return name
            }
        }
        return try await templateTask!.value
    }

    /// Creates an unstarted server in a new temporary directory with a random port number.
    /// The port only names the socket file, but distinct ports also keep the servers' System V
    /// shared memory keys apart.
    nonisolated static func makeServer() throws -> EmbeddedPostgres {
        var template = Array("/tmp/sluice-test-XXXXXX".utf8CString)
        guard let path = mkdtemp(&template) else {
            throw EmbeddedPostgresError(
                command: "mkdtemp /tmp/sluice-test-XXXXXX", status: nil,
                output: String(cString: strerror(errno)), serverLogTail: "")
        }
        let directory = URL(fileURLWithPath: String(cString: path))
        return EmbeddedPostgres(directory: directory, port: Int.random(in: 20_000...60_000), settings: testSettings)
    }

    /// Runs blocking work on a dispatch thread so it does not hold a cooperative thread.
    public nonisolated static func offCooperativePool<Value: Sendable>(
        _ work: @escaping @Sendable () throws -> Value
    ) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try work() })
            }
        }
    }
}
