import SluicePostgres
import SluiceTestSupport

/// Opens a connection to a new database without the sluice extension on the shared test server.
func connectToFreshDatabase(reconnectPolicy: ReconnectPolicy = .default) async throws -> PostgresConnection {
    let database = try await TestPostgres.shared.makeDatabase(withExtension: false)
    return try await PostgresConnection.connect(
        database.connectionString, applicationName: "SluicePostgresTests", reconnectPolicy: reconnectPolicy)
}
