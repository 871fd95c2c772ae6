import SluicePostgres

/// An error from the Sluice client or worker, with a stable `code` to branch on.
///
/// `description` is safe to log: it names what failed and the value's identity (a task name, a
/// run id) but never contains inputs, outputs or SQL. `debugDescription` adds `detail`, which may
/// contain the server's detail text or an underlying error.
public struct SluiceError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// A stable error code. Codes from the server are its SQLSTATE (`SL001` ...); codes made by
    /// the Swift side are lowercase words.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code text, such as `SL001` or `run_failed`.
        public let rawValue: String

        /// Creates a code from its text.
        public init(_ rawValue: String) {
            self.rawValue = rawValue
        }

        public var description: String { rawValue }

        /// SL001: the task is not defined in the database.
        public static let unknownTask = Code("SL001")
        /// SL002: an input, metadata or output is not a JSON object, is too large, or cannot be
        /// stored (for example a string with a NUL character).
        public static let invalidPayload = Code("SL002")
        /// SL003: no run has the given id.
        public static let runNotFound = Code("SL003")
        /// SL004: an option is outside its allowed range or has an invalid format.
        public static let invalidOption = Code("SL004")
        /// SL005: the worker incarnation is unknown or was stopped; it must register again.
        public static let workerNotRegistered = Code("SL005")
        /// The run ended in state `failed`; `message` carries the stored error message.
        public static let runFailed = Code("run_failed")
        /// The run ended in state `cancelled`; `message` carries the cancel reason.
        public static let runCancelled = Code("run_cancelled")
        /// The run ended in state `skipped`.
        public static let runSkipped = Code("run_skipped")
        /// Waiting for a result took longer than the given timeout.
        public static let timedOut = Code("timed_out")
        /// An input could not be encoded or an output could not be decoded.
        public static let encoding = Code("encoding")
        /// The connection to the database failed or was lost.
        public static let connection = Code("connection")
        /// Another database error; `message` carries its SQLSTATE.
        public static let database = Code("database")
    }

    /// The stable code.
    public var code: Code
    /// A message that is safe to log: what failed, on which value, and what to do next.
    public var message: String
    /// Extra detail for debugging; may contain server detail text or an underlying error.
    public var detail: String?
    /// The run the error is about, when there is one.
    public var runID: Int64?

    /// Creates an error; `detail` appears only in `debugDescription`.
    public init(code: Code, message: String, detail: String? = nil, runID: Int64? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
        self.runID = runID
    }

    public var description: String {
        "\(code): \(message)"
    }

    public var debugDescription: String {
        guard let detail else {
            return description
        }
        return description + "\ndetail: " + detail
    }

    /// Converts an error from the database layer, keeping a project SQLSTATE as the code.
    static func from(_ error: any Error, runID: Int64? = nil) -> SluiceError {
        if let error = error as? SluiceError {
            return error
        }
        guard let error = error as? PostgresError else {
            return SluiceError(code: .database, message: "\(error)", runID: runID)
        }
        var message = error.message
        if let hint = error.hint {
            message += " (hint: \(hint))"
        }
        if error.isConnectionError {
            return SluiceError(code: .connection, message: message, detail: error.debugDescription, runID: runID)
        }
        if let sqlState = error.sqlState, sqlState.hasPrefix("SL") {
            return SluiceError(code: Code(sqlState), message: message, detail: error.debugDescription, runID: runID)
        }
        if let sqlState = error.sqlState {
            message = "SQLSTATE \(sqlState): " + message
        }
        return SluiceError(code: .database, message: message, detail: error.debugDescription, runID: runID)
    }
}
