import SluicePostgres
import SluiceTestSupport
import Testing

@Suite struct WithConnectionTests {
    struct HandlerFailed: Error {}

    @Test func returnsValueAndCloses() async throws {
        let database = try await TestPostgres.shared.makeDatabase(withExtension: false)
        var used: PostgresConnection?
        let value = try await PostgresConnection.withConnection(
            database.connectionString, applicationName: "with-connection-test"
        ) { connection in
            used = connection
            return try await connection.query("SELECT 6 * 7")[0].decode(Int.self, at: 0)
        }
        #expect(value == 42)
        try await expectClosed(try #require(used), on: database)
    }

    @Test func rethrowsErrorAndCloses() async throws {
        let database = try await TestPostgres.shared.makeDatabase(withExtension: false)
        var used: PostgresConnection?
        await #expect(throws: HandlerFailed.self) {
            try await PostgresConnection.withConnection(
                database.connectionString, applicationName: "with-connection-test"
            ) { connection in
                used = connection
                try await connection.execute("SELECT 1")
                throw HandlerFailed()
            }
        }
        try await expectClosed(try #require(used), on: database)
    }

    /// Checks that `connection` rejects statements and that its server session has ended.
    private func expectClosed(_ connection: PostgresConnection, on database: TestDatabase) async throws {
        let error = await #expect(throws: PostgresError.self) { try await connection.execute("SELECT 1") }
        #expect(error?.kind == .closed)
        let observer = try await PostgresConnection.connect(database.connectionString)
        try await waitUntil("the session of the closed connection ends") {
            let rows = try await observer.query(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'with-connection-test' AND datname = current_database()")
            return try rows[0].decode(Int.self, at: 0) == 0
        }
        await observer.close()
    }
}
