/// An error from SluicePostgres: a server error, a lost or failed connection, an invalid
/// parameter or a value that cannot be decoded.
///
/// `description` is safe to log: it contains the kind, the SQLSTATE, the primary message and the
/// hint, but no SQL, no parameter values and no `detail` (the server puts row values there, for
/// example in unique violations). `debugDescription` adds the detail and the SQL.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The category of a `PostgresError`; callers branch on it, or on `sqlState` for server errors.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let description: String

        /// The server rejected a statement; `sqlState` contains its code.
        public static let server = Kind(description: "server error")
        /// A connection could not be opened.
        public static let connectionFailed = Kind(description: "connection failed")
        /// An open connection broke; the next call on the same `PostgresConnection` reconnects.
        public static let connectionLost = Kind(description: "connection lost")
        /// A column value could not be decoded into the requested Swift type.
        public static let decoding = Kind(description: "decoding error")
        /// A parameter cannot be sent, for example a string containing a NUL character.
        public static let invalidParameter = Kind(description: "invalid parameter")
        /// A pipeline statement was skipped because an earlier statement in the same pipeline
        /// failed.
        public static let pipelineAborted = Kind(description: "pipeline aborted")
        /// The connection or listener was closed by `close()`.
        public static let closed = Kind(description: "connection closed")
        /// libpq returned something this binding does not handle, such as a COPY result.
        public static let unsupported = Kind(description: "unsupported result")
    }

    /// The category of the error.
    public var kind: Kind
    /// The five-character SQLSTATE code, when the error came from the server.
    public var sqlState: String?
    /// The primary message (PostgreSQL's `MESSAGE_PRIMARY`, or libpq's error message).
    public var message: String
    /// The server's `DETAIL` field; omitted from `description` because it may contain row values.
    public var detail: String?
    /// The server's `HINT` field.
    public var hint: String?
    /// The zero-based position of the failing statement within a pipeline, if any.
    public var statementIndex: Int?
    /// The statement that failed; shown only in `debugDescription`.
    public var sql: String?
    /// The undecodable column value; shown only in `debugDescription`.
    public var value: String?

    /// Creates an error; `sql` and `value` appear only in `debugDescription`.
    public init(
        kind: Kind, message: String, sqlState: String? = nil, detail: String? = nil,
        hint: String? = nil, statementIndex: Int? = nil, sql: String? = nil, value: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.statementIndex = statementIndex
        self.sql = sql
        self.value = value
    }

    /// True when the connection is unusable; the caller may retry after the next call reconnects.
    public var isConnectionError: Bool {
        kind == .connectionLost || kind == .connectionFailed
    }

    /// Returns whether a SQLSTATE means the session is gone: class 08 (connection exception),
    /// 57P01 (admin shutdown), 57P02 (crash shutdown) or 57P03 (cannot connect now).
    public static func isConnectionSQLState(_ sqlState: String) -> Bool {
        sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState)
    }

    public var description: String {
        var text = kind.description
        if let sqlState {
            text += " \(sqlState)"
        }
        if let statementIndex {
            text += " in pipeline statement \(statementIndex)"
        }
        text += ": \(message)"
        if let hint {
            text += " (hint: \(hint))"
        }
        return text
    }

    public var debugDescription: String {
        var text = description
        if let detail {
            text += "\ndetail: \(detail)"
        }
        if let value {
            text += "\nvalue: \(value)"
        }
        if let sql {
            text += "\nsql: \(sql)"
        }
        return text
    }
}
