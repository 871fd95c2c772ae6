import SluicePostgres
import SluiceTestSupport
import Testing

@Suite struct ReconnectPolicyTests {
    @Test func delaysGrowAndCap() {
        let policy = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(1), factor: 2)
        #expect(policy.delay(afterFailedAttempts: 0) == .zero)
        #expect(policy.delay(afterFailedAttempts: 1) == .milliseconds(100))
        #expect(policy.delay(afterFailedAttempts: 2) == .milliseconds(200))
        #expect(policy.delay(afterFailedAttempts: 4) == .milliseconds(800))
        #expect(policy.delay(afterFailedAttempts: 5) == .seconds(1))
        #expect(policy.delay(afterFailedAttempts: 1_000) == .seconds(1))
        #expect(policy.delay(afterFailedAttempts: Int.max) == .seconds(1))
    }

    @Test func factorBelowOneKeepsInitialDelay() {
        let policy = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(1), factor: 0.5)
        #expect(policy.delay(afterFailedAttempts: 10) == .milliseconds(100))
    }

    @Test func backoffGivesUpAfterMaximumAttempts() {
        var backoff = ReconnectBackoff(
            policy: ReconnectPolicy(initialDelay: .milliseconds(10), maximumDelay: .milliseconds(15), maximumAttempts: 3))
        #expect(backoff.recordFailure() == .retry(after: .milliseconds(10)))
        #expect(backoff.recordFailure() == .retry(after: .milliseconds(15)))
        #expect(backoff.recordFailure() == .giveUp)
        backoff.recordSuccess()
        #expect(backoff.failedAttempts == 0)
        #expect(backoff.recordFailure() == .retry(after: .milliseconds(10)))
    }

    @Test func unlimitedBackoffNeverGivesUp() {
        var backoff = ReconnectBackoff(policy: ReconnectPolicy(maximumAttempts: nil))
        for _ in 0..<10_000 {
            #expect(backoff.recordFailure() != .giveUp)
        }
        #expect(backoff.recordFailure() == .retry(after: .seconds(2)))
    }
}

@Suite struct ConnectionLossTests {
    @Test func terminatedBackendReconnectsOnNextCall() async throws {
        let database = try await TestPostgres.shared.makeDatabase(withExtension: false)
        let connection = try await PostgresConnection.connect(database.connectionString)
        let admin = try await database.connect()
        try await connection.prepare(name: "double_it", sql: "SELECT $1::int * 2")
        _ = try await connection.queryCached("SELECT $1::text || '!'", ["hi"])

        let firstProcessID = try await connection.backendProcessID()
        let terminated = try await admin.query("SELECT pg_terminate_backend($1)", [firstProcessID])
        #expect(try terminated.first?.decode(Bool.self, at: 0) == true)

        let error = try await #require(throws: PostgresError.self) { try await connection.query("SELECT 1") }
        #expect(error.kind == .connectionLost)
        #expect(error.isConnectionError)

        let rows = try await connection.query("SELECT 1")
        #expect(try rows.first?.decode(Int.self, at: 0) == 1)
        #expect(try await connection.backendProcessID() != firstProcessID)

        // Named and cached statements are prepared again in the new session.
        let doubled = try await connection.executePrepared(name: "double_it", [21])
        #expect(try doubled.first?.decode(Int.self, at: 0) == 42)
        let cached = try await connection.queryCached("SELECT $1::text || '!'", ["again"])
        #expect(try cached.first?.decode(String.self, at: 0) == "again!")
        let piped = try await connection.pipelineResultsCached([(sql: "SELECT $1::text || '!'", parameters: ["piped"])])
        #expect(try piped[0].get().first?.decode(String.self, at: 0) == "piped!")
        await admin.close()
        await connection.close()
    }

    @Test func closedConnectionRejectsCalls() async throws {
        let connection = try await connectToFreshDatabase()
        await connection.close()
        let error = try await #require(throws: PostgresError.self) { try await connection.query("SELECT 1") }
        #expect(error.kind == .closed)
    }

    @Test func preparedStatementNameConflictIsRejected() async throws {
        let connection = try await connectToFreshDatabase()
        try await connection.prepare(name: "q", sql: "SELECT 1")
        try await connection.prepare(name: "q", sql: "SELECT 1")
        let error = try await #require(throws: PostgresError.self) {
            try await connection.prepare(name: "q", sql: "SELECT 2")
        }
        #expect(error.kind == .invalidParameter)
    }
}
