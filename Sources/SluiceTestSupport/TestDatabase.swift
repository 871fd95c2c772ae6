import EmbeddedPostgres
import SluicePostgres

/// A uniquely named database on a test server, made by `TestPostgres.makeDatabase`.
public struct TestDatabase: Sendable {
    /// The server that contains the database.
    public let server: EmbeddedPostgres
    /// The database name.
    public let name: String

    /// A libpq connection string for this database as user `postgres`.
    public var connectionString: String {
        server.connectionString(database: name)
    }

    /// Opens a new connection to this database.
    public func connect(applicationName: String? = nil) async throws -> PostgresConnection {
        try await PostgresConnection.connect(connectionString, applicationName: applicationName)
    }

    /// Drops the database, disconnecting its sessions.
    public func drop() async throws {
        try await server.dropDatabase(name)
    }
}
