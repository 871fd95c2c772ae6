import SluicePostgres
import SluiceTestSupport
import Testing

@Suite struct TransactionTests {
    struct ExpectedFailure: Error {}

    @Test func thrownErrorRollsBack() async throws {
        let connection = try await connectToFreshDatabase()
        try await connection.execute("CREATE TABLE t (n int)")
        await #expect(throws: ExpectedFailure.self) {
            try await connection.transaction { transaction in
                try await transaction.execute("INSERT INTO t VALUES (1)")
                throw ExpectedFailure()
            }
        }
        let count = try await connection.query("SELECT count(*) FROM t")
        #expect(try count.first?.decode(Int64.self, at: 0) == 0)
    }

    @Test func successfulBodyCommits() async throws {
        let connection = try await connectToFreshDatabase()
        try await connection.execute("CREATE TABLE t (n int)")
        let inserted = try await connection.transaction { transaction in
            try await transaction.execute("INSERT INTO t VALUES (1), (2)")
        }
        #expect(inserted == 2)
        let count = try await connection.query("SELECT count(*) FROM t")
        #expect(try count.first?.decode(Int64.self, at: 0) == 2)
    }

    /// Sluice's worker functions need READ COMMITTED, so a connection uses it whatever the
    /// database's default.
    @Test func connectionUsesReadCommitted() async throws {
        let database = try await TestPostgres.shared.makeDatabase(withExtension: false)
        let setup = try await PostgresConnection.connect(database.connectionString)
        try await setup.execute(
            "ALTER DATABASE \"\(database.name)\" SET default_transaction_isolation = 'repeatable read'")
        await setup.close()
        let connection = try await PostgresConnection.connect(database.connectionString)
        let level = try await connection.query("SHOW transaction_isolation")
        #expect(try level[0].decode(String.self, at: 0) == "read committed")
        await connection.close()
    }
}
