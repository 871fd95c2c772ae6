import SluicePostgres
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
}
