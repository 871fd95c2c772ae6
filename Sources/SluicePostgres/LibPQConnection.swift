import CLibPQ
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A statement with its parameters already encoded as text (nil is NULL).
struct EncodedStatement: Sendable {
    var sql: String
    var parameters: [String?]
    /// In a pipeline: run the statement prepared under this name instead of sending its text.
    var preparedName: String? = nil
    /// In a pipeline: prepare `preparedName` first, because this server session lacks it.
    var needsPrepare = false
}

/// One libpq connection handle and the blocking calls made on it.
///
/// Not thread-safe: the owner calls it from one thread or serial queue at a time. Every method
/// blocks until the server responds.
final class LibPQConnection {
    let handle: OpaquePointer

    private init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        PQfinish(handle)
    }

    /// Returns libpq's message for a connection string it cannot parse, or nil when it parses
    /// or is a plain database name (see `open`, which passes it with `expand_dbname`).
    static func connectionStringError(_ connectionString: String) -> String? {
        let isExpanded = connectionString.contains("=") || connectionString.hasPrefix("postgresql://")
            || connectionString.hasPrefix("postgres://")
        guard isExpanded else {
            return nil
        }
        var message: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(connectionString, &message) else {
            defer { PQfreemem(message) }
            return message.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) }
                ?? "libpq could not parse the connection string"
        }
        PQconninfoFree(options)
        return nil
    }

    /// Opens a connection and sets the session time zone to UTC, which the `Date` decoder needs.
    ///
    /// - Parameters:
    ///   - connectionString: a libpq keyword/value string or `postgresql://` URL; nil or empty
    ///     uses libpq's environment variables (PGHOST, PGPORT, PGDATABASE, PGUSER, ...).
    ///   - applicationName: the `application_name` reported in `pg_stat_activity`, if any.
    static func open(connectionString: String?, applicationName: String?) throws -> LibPQConnection {
        var keywords: [String] = []
        var values: [String] = []
        if let connectionString, !connectionString.isEmpty {
            keywords.append("dbname")
            values.append(connectionString)
        }
        if let applicationName {
            keywords.append("application_name")
            values.append(applicationName)
        }
        let handle = withCStringArray(keywords) { keywordPointers in
            withCStringArray(values) { valuePointers in
                PQconnectdbParams(keywordPointers + [nil], valuePointers + [nil], 1)
            }
        }
        guard let handle else {
            throw PostgresError(kind: .connectionFailed, message: "libpq could not allocate a connection")
        }
        let connection = LibPQConnection(handle: handle)
        // libpq prints notices and warnings to stderr by default; a library must stay quiet.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        guard PQstatus(handle) == CONNECTION_OK else {
            throw PostgresError(kind: .connectionFailed, message: connection.lastErrorMessage)
        }
        do {
            _ = try connection.execute(EncodedStatement(sql: "SET TimeZone TO 'UTC'", parameters: []))
            // Sluice's worker functions raise an error under any other level: each of their
            // statements must see what committed before it, whatever the server's default.
            _ = try connection.execute(
                EncodedStatement(sql: "SET default_transaction_isolation TO 'read committed'", parameters: []))
        } catch var error as PostgresError {
            error.kind = .connectionFailed
            throw error
        }
        return connection
    }

    /// True while libpq considers the connection usable.
    var isOK: Bool {
        PQstatus(handle) == CONNECTION_OK
    }

    /// The process ID of the server backend serving this connection.
    var backendProcessID: Int32 {
        PQbackendPID(handle)
    }

    /// libpq's last error message, without the trailing newline.
    var lastErrorMessage: String {
        guard let message = PQerrorMessage(handle) else { return "unknown libpq error" }
        return String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs one statement with text parameters (PQexecParams).
    func execute(_ statement: EncodedStatement) throws -> PostgresRows {
        let result = withCStringArray(statement.parameters) { parameterPointers in
            PQexecParams(
                handle, statement.sql, Int32(parameterPointers.count), nil, parameterPointers,
                nil, nil, 0)
        }
        return try consume(result, sql: statement.sql)
    }

    /// Creates the named prepared statement `name` on the server (PQprepare).
    func prepare(name: String, sql: String) throws {
        let result = PQprepare(handle, name, sql, 0, nil)
        _ = try consume(result, sql: sql)
    }

    /// Runs the prepared statement `name` with text parameters (PQexecPrepared).
    func executePrepared(name: String, sql: String, parameters: [String?]) throws -> PostgresRows {
        let result = withCStringArray(parameters) { parameterPointers in
            PQexecPrepared(handle, name, Int32(parameterPointers.count), parameterPointers, nil, nil, 0)
        }
        return try consume(result, sql: sql)
    }

    /// Frees the notifications libpq has read on this connection.
    func discardNotifications() {
        while let notification = PQnotifies(handle) {
            PQfreemem(notification)
        }
    }

    /// Quotes an identifier for SQL text with PQescapeIdentifier.
    func escapeIdentifier(_ identifier: String) throws -> String {
        guard !identifier.utf8.contains(0) else {
            throw PostgresError(
                kind: .invalidParameter, message: "identifier contains a NUL character (U+0000)")
        }
        let length = identifier.utf8.count
        guard let escaped = PQescapeIdentifier(handle, identifier, length) else {
            throw PostgresError(kind: .invalidParameter, message: lastErrorMessage)
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    /// Converts a result to rows, which then own it, or throws the error it carries and frees it.
    func consume(_ result: OpaquePointer?, sql: String?) throws -> PostgresRows {
        guard let result else {
            throw connectionError(sql: sql)
        }
        let status = PQresultStatus(result)
        switch status {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE:
            // The rows own the result from here on and free it.
            return PostgresRows(result: result)
        default:
            defer { PQclear(result) }
            throw failure(of: result, status: status, sql: sql)
        }
    }

    /// Builds the error for a result whose status is not a success.
    private func failure(of result: OpaquePointer, status: ExecStatusType, sql: String?) -> PostgresError {
        switch status {
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR, PGRES_BAD_RESPONSE:
            return error(from: result, sql: sql)
        case PGRES_PIPELINE_ABORTED:
            return PostgresError(
                kind: .pipelineAborted,
                message: "statement skipped because an earlier statement in the pipeline failed",
                sql: sql)
        default:
            let statusName = String(cString: PQresStatus(status))
            return PostgresError(
                kind: .unsupported, message: "libpq returned \(statusName), which is not supported", sql: sql)
        }
    }

    /// Builds the error for a failed result, classifying connection-class failures as lost.
    func error(from result: OpaquePointer, sql: String?) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let sqlState = field("C")
        var message = field("M")
        if message == nil, let text = PQresultErrorMessage(result) {
            message = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let isLost = !isOK || sqlState.map(PostgresError.isConnectionSQLState) ?? false
        return PostgresError(
            kind: isLost ? .connectionLost : .server,
            message: message ?? lastErrorMessage,
            sqlState: sqlState, detail: field("D"), hint: field("H"), sql: sql)
    }

    /// Builds the error for a call that returned no result at all.
    func connectionError(sql: String?) -> PostgresError {
        PostgresError(kind: isOK ? .unsupported : .connectionLost, message: lastErrorMessage, sql: sql)
    }
}

/// Calls `body` with C string copies of `strings` (nil stays a null pointer), then frees them.
func withCStringArray<Result>(
    _ strings: [String?], _ body: ([UnsafePointer<CChar>?]) throws -> Result
) rethrows -> Result {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { string in string.map { strdup($0)! } }
    defer {
        for copy in copies {
            free(copy)
        }
    }
    return try body(copies.map { $0.map { UnsafePointer($0) } })
}
