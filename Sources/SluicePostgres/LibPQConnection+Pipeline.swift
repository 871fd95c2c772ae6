import CLibPQ
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension LibPQConnection {
    /// Sends all statements in libpq pipeline mode, then reads every result.
    ///
    /// With `syncEach` false there is one sync point at the end, so the statements form one
    /// implicit transaction: after a failure the later statements are skipped
    /// (`.pipelineAborted`) and the earlier ones are rolled back. With `syncEach` true every
    /// statement is its own transaction and fails alone.
    ///
    /// Statements with `needsPrepare` are prepared in the same round trip, and the names of
    /// those prepared successfully are added to `prepared`.
    ///
    /// - Throws: `.connectionLost` when the connection breaks; statement errors are returned.
    func runPipeline(
        _ statements: [EncodedStatement], syncEach: Bool, prepared: inout Set<String>
    ) throws -> [Result<PostgresRows, PostgresError>] {
        guard PQenterPipelineMode(handle) == 1 else {
            throw connectionError(sql: nil)
        }
        defer {
            if PQpipelineStatus(handle) != PQ_PIPELINE_OFF {
                PQexitPipelineMode(handle)
            }
        }
        try send(statements, syncEach: syncEach)

        var results: [Result<PostgresRows, PostgresError>] = []
        for (index, statement) in statements.enumerated() {
            if statement.needsPrepare, let name = statement.preparedName {
                // A failed prepare skips its statement, whose error then stands for both.
                if case .failure(let error) = try readStatementResult(sql: statement.sql, index: index) {
                    _ = try readStatementResult(sql: statement.sql, index: index)
                    results.append(.failure(error))
                    if syncEach {
                        try readSync()
                    }
                    continue
                }
                prepared.insert(name)
            }
            results.append(try readStatementResult(sql: statement.sql, index: index))
            if syncEach {
                try readSync()
            }
        }
        if !syncEach {
            try readSync()
        }
        return results
    }

    /// Queues every statement and sync point, then flushes. The socket is non-blocking while
    /// sending, and incoming results are read meanwhile, so a large pipeline cannot deadlock on
    /// full socket buffers in both directions.
    private func send(_ statements: [EncodedStatement], syncEach: Bool) throws {
        guard PQsetnonblocking(handle, 1) == 0 else {
            throw connectionError(sql: nil)
        }
        defer { PQsetnonblocking(handle, 0) }

        for statement in statements {
            if let name = statement.preparedName, statement.needsPrepare,
                PQsendPrepare(handle, name, statement.sql, 0, nil) != 1
            {
                throw connectionError(sql: statement.sql)
            }
            let queued = withCStringArray(statement.parameters) { parameterPointers in
                if let name = statement.preparedName {
                    return PQsendQueryPrepared(
                        handle, name, Int32(parameterPointers.count), parameterPointers, nil, nil, 0)
                }
                return PQsendQueryParams(
                    handle, statement.sql, Int32(parameterPointers.count), nil, parameterPointers,
                    nil, nil, 0)
            }
            guard queued == 1 else {
                throw connectionError(sql: statement.sql)
            }
            if syncEach, PQpipelineSync(handle) != 1 {
                throw connectionError(sql: nil)
            }
        }
        if !syncEach, PQpipelineSync(handle) != 1 {
            throw connectionError(sql: nil)
        }

        while true {
            let flushed = PQflush(handle)
            if flushed == 0 {
                return
            }
            guard flushed == 1 else {
                throw lostConnection()
            }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN | POLLOUT), revents: 0)
            _ = poll(&descriptor, 1, -1)
            if descriptor.revents & Int16(POLLIN) != 0, PQconsumeInput(handle) == 0 {
                throw lostConnection()
            }
        }
    }

    /// Reads the result of one pipelined statement and the NULL that ends it.
    private func readStatementResult(sql: String, index: Int) throws -> Result<PostgresRows, PostgresError> {
        let result = PQgetResult(handle)
        guard result != nil else {
            throw lostConnection()
        }
        let outcome: Result<PostgresRows, PostgresError>
        do {
            outcome = .success(try consume(result, sql: sql))
        } catch var error as PostgresError {
            if error.kind == .connectionLost {
                throw error
            }
            error.statementIndex = index
            outcome = .failure(error)
        }
        // Each statement's results end with a NULL; discard anything before it.
        while let extra = PQgetResult(handle) {
            PQclear(extra)
            guard isOK else { throw lostConnection() }
        }
        return outcome
    }

    /// Reads the PGRES_PIPELINE_SYNC result that ends a sync point.
    private func readSync() throws {
        guard let result = PQgetResult(handle) else {
            throw lostConnection()
        }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_PIPELINE_SYNC else {
            throw isOK
                ? PostgresError(kind: .unsupported, message: "pipeline result out of order: expected a sync point")
                : lostConnection()
        }
    }

    private func lostConnection() -> PostgresError {
        PostgresError(kind: .connectionLost, message: lastErrorMessage)
    }
}
