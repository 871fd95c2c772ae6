extension PostgresConnection {
    /// Runs `body` inside BEGIN and COMMIT, rolling back when `body` throws, and rethrows the
    /// error.
    ///
    /// Other callers must not use the connection until this returns, because their statements
    /// would run inside the transaction. When the connection is lost, no ROLLBACK is sent: the
    /// server has already aborted the transaction.
    public func transaction<Value>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        try await execute("BEGIN")
        let value: Value
        do {
            value = try await body(self)
        } catch {
            let isConnectionError = (error as? PostgresError)?.isConnectionError ?? false
            if !isConnectionError {
                _ = try? await execute("ROLLBACK")
            }
            throw error
        }
        try await execute("COMMIT")
        return value
    }
}
