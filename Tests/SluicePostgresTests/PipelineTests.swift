import SluicePostgres
import Testing

@Suite struct PipelineTests {
    @Test func pipelineReturnsRowsInOrder() async throws {
        let connection = try await connectToFreshDatabase()
        let results = try await connection.pipeline([
            (sql: "CREATE TABLE t (n int)", parameters: []),
            (sql: "INSERT INTO t VALUES ($1), ($2)", parameters: [1, 2]),
            (sql: "SELECT sum(n) FROM t", parameters: []),
        ])
        #expect(results.count == 3)
        #expect(results[1].affectedRows == 2)
        #expect(try results[2].first?.decode(Int64.self, at: 0) == 3)
    }

    @Test func failingStatementAbortsWholePipeline() async throws {
        let connection = try await connectToFreshDatabase()
        try await connection.execute("CREATE TABLE t (n int PRIMARY KEY)")
        let error = try await #require(throws: PostgresError.self) {
            try await connection.pipeline([
                (sql: "INSERT INTO t VALUES ($1)", parameters: [1]),
                (sql: "SELECT 1 / 0", parameters: []),
                (sql: "INSERT INTO t VALUES ($1)", parameters: [2]),
            ])
        }
        #expect(error.sqlState == "22012")
        #expect(error.statementIndex == 1)

        let count = try await connection.query("SELECT count(*) FROM t")
        #expect(try count.first?.decode(Int64.self, at: 0) == 0)
    }

    @Test func independentResultsFailAlone() async throws {
        let connection = try await connectToFreshDatabase()
        try await connection.execute("CREATE TABLE t (n int PRIMARY KEY)")
        let results = try await connection.pipelineResults([
            (sql: "INSERT INTO t VALUES ($1)", parameters: [1]),
            (sql: "INSERT INTO t VALUES ($1)", parameters: [1]),
            (sql: "INSERT INTO t VALUES ($1)", parameters: [2]),
        ])
        #expect(results.count == 3)
        #expect((try? results[0].get().affectedRows) == 1)
        #expect(throws: PostgresError.self) { try results[1].get() }
        if case .failure(let error) = results[1] {
            #expect(error.sqlState == "23505")
            #expect(error.statementIndex == 1)
        }
        #expect((try? results[2].get().affectedRows) == 1)

        let count = try await connection.query("SELECT count(*) FROM t")
        #expect(try count.first?.decode(Int64.self, at: 0) == 2)
    }

    @Test func largePipelineDoesNotDeadlock() async throws {
        let connection = try await connectToFreshDatabase()
        let padding = String(repeating: "x", count: 2_000)
        let statements = (0..<500).map { index -> (sql: String, parameters: [(any PostgresEncodable)?]) in
            (sql: "SELECT $1::int, $2::text", parameters: [index, padding])
        }
        let results = try await connection.pipeline(statements)
        #expect(results.count == 500)
        #expect(try results[499].first?.decode(Int.self, at: 0) == 499)
    }

    @Test func connectionIsUsableAfterPipeline() async throws {
        let connection = try await connectToFreshDatabase()
        _ = try? await connection.pipeline([(sql: "SELECT 1/0", parameters: [])])
        let rows = try await connection.query("SELECT $1::int", [5])
        #expect(try rows.first?.decode(Int.self, at: 0) == 5)
    }

    @Test func cachedPipelinePreparesOnceAndReuses() async throws {
        let connection = try await connectToFreshDatabase()
        try await connection.execute("CREATE TABLE t (n int PRIMARY KEY)")
        let insert = "INSERT INTO t VALUES ($1)"
        for round in 0..<3 {
            let results = try await connection.pipelineResultsCached([
                (sql: insert, parameters: [round * 2]),
                (sql: insert, parameters: [round * 2 + 1]),
                (sql: "SELECT count(*) FROM t", parameters: []),
            ])
            #expect(try results[2].get().first?.decode(Int64.self, at: 0) == Int64(round * 2 + 2))
        }
        let statements = try await connection.query(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO t%'")
        #expect(try statements.first?.decode(Int64.self, at: 0) == 1)
        await connection.close()
    }

    @Test func cachedStatementThatFailedRunsAgain() async throws {
        let connection = try await connectToFreshDatabase()
        try await connection.execute("CREATE TABLE t (n int PRIMARY KEY)")
        let insert = "INSERT INTO t VALUES ($1)"
        // The first use prepares the statement and then fails on the duplicate key.
        let first = try await connection.pipelineResultsCached([
            (sql: insert, parameters: [1]), (sql: insert, parameters: [1]),
        ])
        #expect((try? first[0].get().affectedRows) == 1)
        if case .failure(let error) = first[1] {
            #expect(error.sqlState == "23505")
        } else {
            Issue.record("the duplicate insert succeeded")
        }
        let second = try await connection.pipelineResultsCached([(sql: insert, parameters: [2])])
        #expect((try? second[0].get().affectedRows) == 1)
        await connection.close()
    }

    @Test func cachedStatementThatDoesNotParseFailsAlone() async throws {
        let connection = try await connectToFreshDatabase()
        let results = try await connection.pipelineResultsCached([
            (sql: "SELEC $1::int", parameters: [1]),
            (sql: "SELECT $1::int + 1", parameters: [1]),
        ])
        if case .failure(let error) = results[0] {
            #expect(error.sqlState == "42601")
            #expect(error.statementIndex == 0)
        } else {
            Issue.record("a statement that does not parse succeeded")
        }
        #expect(try results[1].get().first?.decode(Int.self, at: 0) == 2)
        // The text was never prepared, so it is prepared again, and fails again, on next use.
        let again = try await connection.pipelineResultsCached([(sql: "SELEC $1::int", parameters: [1])])
        if case .failure(let error) = again[0] {
            #expect(error.sqlState == "42601")
        } else {
            Issue.record("a statement that does not parse succeeded")
        }
        await connection.close()
    }
}
