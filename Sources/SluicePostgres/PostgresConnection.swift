import CLibPQ
import Dispatch
import Foundation

/// A connection to PostgreSQL through libpq.
///
/// libpq calls block, so each connection runs them on its own serial dispatch queue, never on
/// Swift's cooperative thread pool. Calls on one connection run one at a time in the order they
/// arrive: the connection is safe to share, but concurrent callers wait for each other, and a
/// transaction (`transaction(_:)`) needs the connection to itself. Use one connection per logical
/// caller, or a `PostgresConnectionPool`.
///
/// When the connection breaks, the failing call throws `.connectionLost`, and the next call
/// reconnects following `reconnectPolicy`, re-preparing named statements as they are used.
/// Session state (SET, temporary tables, open transactions) does not survive a reconnect.
///
/// NOTE: Task cancellation does not interrupt a running statement, so the call returns only when
/// the server has responded.
public final class PostgresConnection: @unchecked Sendable {
    // @unchecked: every `var` below is read and written only on `queue`.

    /// The policy for reconnecting after the connection is lost.
    public let reconnectPolicy: ReconnectPolicy

    private let connectionString: String?
    private let applicationName: String?
    private let queue: DispatchQueue

    private var libpq: LibPQConnection?
    private var isClosed = false
    /// Named statements registered with `prepare(name:sql:)` or created by `queryCached`.
    private var preparedSQLByName: [String: String] = [:]
    /// The subset of `preparedSQLByName` that exists in the current server session.
    private var preparedOnServer: Set<String> = []
    private var cachedStatementNameBySQL: [String: String] = [:]

    private init(connectionString: String?, applicationName: String?, reconnectPolicy: ReconnectPolicy) {
        self.connectionString = connectionString
        self.applicationName = applicationName
        self.reconnectPolicy = reconnectPolicy
        queue = DispatchQueue(label: "sluice.postgres.connection")
    }

    /// Opens a connection.
    ///
    /// - Parameters:
    ///   - connectionString: a libpq keyword/value string (`host=/tmp port=5432 dbname=app`) or a
    ///     `postgresql://` URL. Nil or empty uses libpq's environment variables (PGHOST, PGPORT,
    ///     PGDATABASE, PGUSER, ...). Default nil.
    ///   - applicationName: the `application_name` shown in `pg_stat_activity`; default nil.
    ///   - reconnectPolicy: the backoff for reconnecting after a lost connection; default
    ///     `.default`.
    /// - Throws: `PostgresError` of kind `.connectionFailed`; the first connect is not retried.
    public static func connect(
        _ connectionString: String? = nil, applicationName: String? = nil,
        reconnectPolicy: ReconnectPolicy = .default
    ) async throws -> PostgresConnection {
        let connection = PostgresConnection(
            connectionString: connectionString, applicationName: applicationName,
            reconnectPolicy: reconnectPolicy)
        try await connection.onQueue {
            connection.libpq = try LibPQConnection.open(
                connectionString: connectionString, applicationName: applicationName)
        }
        return connection
    }

    /// Returns libpq's message for a connection string it cannot parse, or nil when it parses.
    ///
    /// A string without `=` that is not a `postgresql://` or `postgres://` URL is a database
    /// name to libpq, as in `connect`, so it always parses.
    public static func connectionStringError(_ connectionString: String) -> String? {
        LibPQConnection.connectionStringError(connectionString)
    }

    /// Opens a connection, runs `body` with it and closes it, whether `body` returns or throws.
    ///
    /// The parameters are those of ``connect(_:applicationName:reconnectPolicy:)``.
    public static func withConnection<Value>(
        _ connectionString: String? = nil, applicationName: String? = nil,
        reconnectPolicy: ReconnectPolicy = .default,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        let connection = try await connect(
            connectionString, applicationName: applicationName, reconnectPolicy: reconnectPolicy)
        do {
            let value = try await body(connection)
            await connection.close()
            return value
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Runs a statement and returns its rows; parameters fill `$1`, `$2`, ... in order.
    ///
    /// - Throws: `PostgresError` (`.server` with the SQLSTATE, `.connectionLost`,
    ///   `.invalidParameter` for a string with a NUL character, ...).
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> PostgresRows {
        let statement = EncodedStatement(sql: sql, parameters: try Self.encode(parameters))
        return try await withConnection { connection in
            try connection.execute(statement)
        }
    }

    /// Runs a statement and returns the number of rows it affected.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> Int {
        try await query(sql, parameters).affectedRows
    }

    /// Returns the process ID of the server backend currently serving this connection; it
    /// changes after a reconnect.
    public func backendProcessID() async throws -> Int32 {
        try await withConnection { connection in connection.backendProcessID }
    }

    /// Quotes an identifier (a table, database or channel name) for SQL text with
    /// PQescapeIdentifier.
    public func escapeIdentifier(_ identifier: String) async throws -> String {
        try await withConnection { connection in try connection.escapeIdentifier(identifier) }
    }

    /// Closes the connection; later calls throw `.closed`. Safe to call more than once.
    public func close() async {
        try? await onQueue {
            self.isClosed = true
            self.libpq = nil
        }
    }

    /// Encodes parameters to text, rejecting strings that libpq would silently truncate.
    static func encode(_ parameters: [(any PostgresEncodable)?]) throws -> [String?] {
        try parameters.enumerated().map { index, parameter in
            guard let text = parameter?.postgresText else {
                return nil
            }
            if text.utf8.contains(0) {
                throw PostgresError(
                    kind: .invalidParameter,
                    message: "parameter $\(index + 1) contains a NUL character (U+0000), which "
                        + "PostgreSQL text cannot store; remove it or send the value as bytea (Data)")
            }
            return text
        }
    }

    /// Runs `body` on the connection's queue with an open libpq connection, reconnecting first
    /// if the previous call lost it.
    func withConnection<Value: Sendable>(
        _ body: @escaping @Sendable (LibPQConnection) throws -> Value
    ) async throws -> Value {
        try await onQueue {
            let connection = try self.openConnection()
            do {
                // A session that listens (sluice.claim_or_wait makes it) receives
                // notifications with its results; nothing reads them here, so they are freed.
                defer { connection.discardNotifications() }
                return try body(connection)
            } catch let error as PostgresError where error.kind == .connectionLost || !connection.isOK {
                self.dropConnection()
                var lost = error
                lost.kind = .connectionLost
                throw lost
            }
        }
    }

    /// Runs a prepared statement, preparing it first in this server session if needed.
    /// Called on `queue`.
    func executePreparedOnQueue(
        _ connection: LibPQConnection, name: String, parameters: [String?]
    ) throws -> PostgresRows {
        guard let sql = preparedSQLByName[name] else {
            throw PostgresError(
                kind: .invalidParameter,
                message: "no prepared statement named \"\(name)\"; call prepare(name:sql:) first")
        }
        if !preparedOnServer.contains(name) {
            try connection.prepare(name: name, sql: sql)
            preparedOnServer.insert(name)
        }
        return try connection.executePrepared(name: name, sql: sql, parameters: parameters)
    }

    /// Registers a named statement and prepares it now. Called on `queue`.
    func registerPreparedStatement(_ connection: LibPQConnection, name: String, sql: String) throws {
        if let existing = preparedSQLByName[name], existing != sql {
            throw PostgresError(
                kind: .invalidParameter,
                message: "a different statement is already prepared as \"\(name)\"; choose another name")
        }
        preparedSQLByName[name] = sql
        if !preparedOnServer.contains(name) {
            try connection.prepare(name: name, sql: sql)
            preparedOnServer.insert(name)
        }
    }

    /// Names each statement after its cached SQL text and marks the ones this server session has
    /// not prepared yet, each name once. Called on `queue`.
    func namingCachedStatements(_ statements: [EncodedStatement]) -> [EncodedStatement] {
        var preparing: Set<String> = []
        return statements.map { statement in
            var named = statement
            let name = cachedStatementName(for: statement.sql)
            named.preparedName = name
            named.needsPrepare = !preparedOnServer.contains(name) && preparing.insert(name).inserted
            return named
        }
    }

    /// Records the statements a pipeline prepared in this server session. Called on `queue`.
    func recordPrepared(_ names: Set<String>) {
        preparedOnServer.formUnion(names)
    }

    /// Returns the statement name for cached SQL, assigning one on first use. Called on `queue`.
    func cachedStatementName(for sql: String) -> String {
        if let name = cachedStatementNameBySQL[sql] {
            return name
        }
        let name = "sluice_cached_\(cachedStatementNameBySQL.count + 1)"
        cachedStatementNameBySQL[sql] = name
        preparedSQLByName[name] = sql
        return name
    }

    private func openConnection() throws -> LibPQConnection {
        if isClosed {
            throw PostgresError(kind: .closed, message: "the connection was closed by close()")
        }
        if let libpq, libpq.isOK {
            return libpq
        }
        dropConnection()
        var backoff = ReconnectBackoff(policy: reconnectPolicy)
        while true {
            do {
                let connection = try LibPQConnection.open(
                    connectionString: connectionString, applicationName: applicationName)
                libpq = connection
                return connection
            } catch let error as PostgresError {
                switch backoff.recordFailure() {
                case .retry(let delay):
                    Thread.sleep(forTimeInterval: ReconnectPolicy.seconds(delay))
                case .giveUp:
                    throw error
                }
            }
        }
    }

    private func dropConnection() {
        libpq = nil
        preparedOnServer.removeAll()
    }

    /// Runs `body` on the connection's serial queue and resumes the caller with its outcome.
    private func onQueue<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
