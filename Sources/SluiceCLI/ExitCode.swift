/// The exit codes of `sluice`, which scripts can rely on.
enum ExitCode: Int32, Sendable {
    /// The command succeeded.
    case success = 0
    /// The command failed: a database error, a run that could not be cancelled because it had
    /// finished, or a server already running in the directory of `dev`.
    case failure = 1
    /// The command line or its connection string is invalid: unknown command or option, missing
    /// or malformed value, a connection string that libpq cannot parse, or a value the server
    /// rejected as invalid (SQLSTATE SL002, SL004, SL100, SL101, 22P02).
    case usage = 2
    /// The run id, task name, schedule or rate limit key does not exist.
    case notFound = 3
    /// The database could not be reached.
    case databaseUnreachable = 4
}
