import SluicePostgres
import SluiceTestSupport
import Testing

@Suite struct ConnectionPoolTests {
    @Test func poolNeverExceedsMaximum() async throws {
        let database = try await TestPostgres.shared.makeDatabase(withExtension: false)
        let pool = PostgresConnectionPool(database.connectionString, maximumConnections: 2)
        let processIDs = try await withThrowingTaskGroup(of: Int32.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    try await pool.withConnection { connection in
                        let rows = try await connection.query("SELECT pg_backend_pid() FROM pg_sleep(0.05)")
                        return try rows[0].decode(Int32.self, at: 0)
                    }
                }
            }
            return try await group.reduce(into: Set<Int32>()) { $0.insert($1) }
        }
        #expect(processIDs.count <= 2)
        #expect(processIDs.count >= 1)

        await pool.close()
        await #expect(throws: PostgresError.self) {
            try await pool.withConnection { connection in try await connection.execute("SELECT 1") }
        }
    }
}
