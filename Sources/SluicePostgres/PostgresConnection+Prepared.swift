extension PostgresConnection {
    /// Prepares `sql` as the named statement `name` on this connection.
    ///
    /// The statement is remembered and prepared again after a reconnect. Preparing the same name
    /// with the same SQL again does nothing.
    ///
    /// - Throws: `.invalidParameter` when `name` is already used for different SQL, or the
    ///   server's error when the SQL does not parse.
    public func prepare(name: String, sql: String) async throws {
        try await withConnection { connection in
            try self.registerPreparedStatement(connection, name: name, sql: sql)
        }
    }

    /// Runs the statement prepared as `name` with the given parameters.
    public func executePrepared(
        name: String, _ parameters: [(any PostgresEncodable)?] = []
    ) async throws -> PostgresRows {
        let encoded = try Self.encode(parameters)
        return try await withConnection { connection in
            try self.executePreparedOnQueue(connection, name: name, parameters: encoded)
        }
    }

    /// Runs `sql` as a prepared statement that is created on first use and reused afterwards,
    /// which saves parsing and planning for statements run many times.
    ///
    /// Each distinct SQL text keeps one statement on the server for the connection's lifetime,
    /// so use this for a fixed set of statements, not for SQL built from values.
    public func queryCached(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> PostgresRows {
        let encoded = try Self.encode(parameters)
        return try await withConnection { connection in
            let name = self.cachedStatementName(for: sql)
            return try self.executePreparedOnQueue(connection, name: name, parameters: encoded)
        }
    }
}
