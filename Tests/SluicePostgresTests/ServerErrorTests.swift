import SluicePostgres
import Testing

@Suite struct ServerErrorTests {
    @Test func raisedExceptionKeepsSQLStateDetailHint() async throws {
        let connection = try await connectToFreshDatabase()
        let error = try await #require(throws: PostgresError.self) {
            try await connection.execute(
                """
                DO $$ BEGIN
                  RAISE EXCEPTION 'queue % is paused', 'mail'
                    USING ERRCODE = 'SL001', DETAIL = 'paused by admin', HINT = 'resume the queue';
                END $$
                """)
        }
        #expect(error.kind == .server)
        #expect(error.sqlState == "SL001")
        #expect(error.message == "queue mail is paused")
        #expect(error.detail == "paused by admin")
        #expect(error.hint == "resume the queue")
        #expect(!error.isConnectionError)
        #expect(!error.description.contains("DO $$"))
        #expect(!error.description.contains("paused by admin"))
        #expect(error.debugDescription.contains("DO $$"))

        // The connection stays usable after a server error.
        let rows = try await connection.query("SELECT 1")
        #expect(try rows.first?.decode(Int.self, at: 0) == 1)
    }

    @Test func syntaxErrorHasSQLState() async throws {
        let connection = try await connectToFreshDatabase()
        let error = try await #require(throws: PostgresError.self) { try await connection.query("SELEC 1") }
        #expect(error.sqlState == "42601")
    }

    @Test func connectToMissingServerFails() async throws {
        let error = try await #require(throws: PostgresError.self) {
            try await PostgresConnection.connect("host=/nonexistent-socket-dir port=1 user=postgres connect_timeout=2")
        }
        #expect(error.kind == .connectionFailed)
        #expect(error.isConnectionError)
    }
}
