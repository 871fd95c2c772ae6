extension PostgresConnection {
    /// Sends several statements in one round trip (libpq pipeline mode) and returns their rows in
    /// order.
    ///
    /// The statements share one sync point, so they run as one implicit transaction unless they
    /// contain their own BEGIN/COMMIT. When one fails, the statements after it are skipped and
    /// the ones before it are rolled back. The call then throws the failing statement's error
    /// with `statementIndex` set. Use `pipelineResults(_:)` for statements that should succeed or
    /// fail independently.
    public func pipeline(
        _ statements: [(sql: String, parameters: [(any PostgresEncodable)?])]
    ) async throws -> [PostgresRows] {
        let results = try await runPipeline(statements, syncEach: false, cached: false)
        return try results.map { try $0.get() }
    }

    /// Like `pipeline(_:)`, but runs each SQL text as a prepared statement that is created on
    /// first use and reused afterwards, as `queryCached` does.
    public func pipelineCached(
        _ statements: [(sql: String, parameters: [(any PostgresEncodable)?])]
    ) async throws -> [PostgresRows] {
        let results = try await runPipeline(statements, syncEach: false, cached: true)
        return try results.map { try $0.get() }
    }

    /// Sends several statements in one round trip, each in its own implicit transaction, and
    /// returns each statement's rows or error in order.
    ///
    /// - Throws: only when the pipeline as a whole fails, such as on a lost connection or an
    ///   invalid parameter.
    public func pipelineResults(
        _ statements: [(sql: String, parameters: [(any PostgresEncodable)?])]
    ) async throws -> [Result<PostgresRows, PostgresError>] {
        try await runPipeline(statements, syncEach: true, cached: false)
    }

    /// Like `pipelineResults(_:)`, but runs each SQL text as a prepared statement that is
    /// created on first use and reused afterwards, as `queryCached` does. The first pipeline
    /// that uses a text prepares it in the same round trip.
    public func pipelineResultsCached(
        _ statements: [(sql: String, parameters: [(any PostgresEncodable)?])]
    ) async throws -> [Result<PostgresRows, PostgresError>] {
        try await runPipeline(statements, syncEach: true, cached: true)
    }

    private func runPipeline(
        _ statements: [(sql: String, parameters: [(any PostgresEncodable)?])], syncEach: Bool, cached: Bool
    ) async throws -> [Result<PostgresRows, PostgresError>] {
        if statements.isEmpty {
            return []
        }
        let encoded = try statements.enumerated().map { index, statement in
            do {
                return EncodedStatement(sql: statement.sql, parameters: try Self.encode(statement.parameters))
            } catch var error as PostgresError {
                error.statementIndex = index
                throw error
            }
        }
        return try await withConnection { connection in
            let statements = cached ? self.namingCachedStatements(encoded) : encoded
            var prepared: Set<String> = []
            defer { self.recordPrepared(prepared) }
            return try connection.runPipeline(statements, syncEach: syncEach, prepared: &prepared)
        }
    }
}
