import Foundation
import SluicePostgres

/// A local PostgreSQL server for development and tests, kept in one directory.
///
/// The directory is the data directory: it also contains the Unix socket (`.s.PGSQL.<port>`) and
/// `server.log`. The server listens on no TCP address. PostgreSQL refuses to run as root, so when
/// this process is root the directory is given to the `postgres` user and `initdb` and `pg_ctl`
/// run through `runuser -u postgres --`.
///
/// The methods block while the commands run (a few seconds for `initdb`); call them off Swift's
/// cooperative thread pool where that matters.
public final class EmbeddedPostgres: Sendable {
    /// The shutdown mode of `stop(mode:)`, passed as `pg_ctl stop -m`.
    public enum StopMode: String, Sendable {
        /// Disconnect clients and shut down cleanly.
        case fast
        /// Abort at once; the next start runs crash recovery.
        case immediate
    }

    /// The data directory, which also contains the socket and `server.log`.
    public let directory: URL
    /// The port number, which names the socket file; no TCP port is opened.
    public let port: Int
    /// Server settings passed as `-c name=value` on start.
    public let settings: [String: String]

    private let commands: ServerCommands

    /// Describes a server in `directory`; nothing runs until `start()`.
    ///
    /// - Parameters:
    ///   - directory: the data directory; its path plus `/.s.PGSQL.<port>` must fit in a Unix
    ///     socket path (107 bytes on Linux).
    ///   - port: default 5432.
    ///   - settings: extra server settings, such as `["fsync": "off"]`; default none.
    public init(directory: URL, port: Int = 5432, settings: [String: String] = [:]) {
        self.directory = directory.standardizedFileURL
        self.port = port
        self.settings = settings
        commands = ServerCommands(binDirectory: ServerCommands.findBinDirectory())
    }

    /// A libpq connection string for the `postgres` database as user `postgres`.
    public var connectionString: String {
        connectionString(database: "postgres")
    }

    /// Returns a libpq connection string for `database` as user `postgres`.
    public func connectionString(database: String) -> String {
        "host=\(Self.quoted(directory.path)) port=\(port) user=postgres dbname=\(Self.quoted(database))"
    }

    /// True when a server accepts connections on this directory's socket (`pg_isready`).
    public var isRunning: Bool {
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("postmaster.pid").path)
        else { return false }
        let result = try? commands.run(
            "pg_isready", ["-q", "-h", directory.path, "-p", String(port)], asServerUser: false)
        return result?.status == 0
    }

    /// The process id of the server running in the directory, or nil when none runs.
    ///
    /// Reads the first line of `postmaster.pid` and checks with `kill(pid, 0)` that the process
    /// exists, as `pg_ctl status` does, so it finds a server on any port. A stale pid file whose
    /// pid now belongs to another process also counts as running.
    public var runningServerPID: Int32? {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent("postmaster.pid").path),
            let firstLine = String(decoding: data, as: UTF8.self).split(separator: "\n").first,
            let pid = Int32(firstLine.trimmingCharacters(in: .whitespaces)), pid > 0
        else { return nil }
        // EPERM means that the process exists but belongs to another user (postgres, when this
        // process is not root).
        guard kill(pid, 0) == 0 || errno == EPERM else {
            return nil
        }
        return pid
    }

    /// Starts the server, first running `initdb` when the directory has no database cluster.
    /// Does nothing when a server is already running in the directory.
    ///
    /// - Throws: `EmbeddedPostgresError` naming the failed command, with its output and the tail
    ///   of `server.log`.
    public func start() throws {
        _ = try startIfStopped()
    }

    /// Starts the server like `start()` and returns true, or returns false without doing
    /// anything when a server already accepts connections on this directory's socket.
    public func startIfStopped() throws -> Bool {
        if isRunning {
            return false
        }
        let options = try serverOptions()
        try prepareDirectory()
        if !FileManager.default.fileExists(atPath: directory.appendingPathComponent("PG_VERSION").path) {
            try initializeCluster()
        }
        try runChecked("pg_ctl", [
            "start", "-w", "-D", directory.path, "-l", logFile.path, "-o", options,
        ])
        return true
    }

    /// Stops the server; does nothing when it is not running.
    ///
    /// - Parameter mode: `.fast` (default) disconnects clients and shuts down cleanly;
    ///   `.immediate` aborts.
    public func stop(mode: StopMode = .fast) throws {
        // `pg_ctl status` exits with 0 only when a live server owns postmaster.pid, so a stale
        // pid file left by a crash does not make stop fail.
        let status = try commands.run("pg_ctl", ["status", "-D", directory.path], asServerUser: true)
        guard status.status == 0 else {
            return
        }
        try runChecked("pg_ctl", ["stop", "-w", "-D", directory.path, "-m", mode.rawValue])
    }

    /// Stops the server with `mode` and starts it again.
    public func restart(mode: StopMode = .fast) throws {
        try stop(mode: mode)
        try start()
    }

    /// Creates database `name` as a copy of `template` (default: PostgreSQL's `template1`).
    public func createDatabase(_ name: String, template: String? = nil) async throws {
        try await withAdminConnection { connection in
            var sql = "CREATE DATABASE \(try await connection.escapeIdentifier(name))"
            if let template {
                sql += " TEMPLATE \(try await connection.escapeIdentifier(template))"
            }
            try await connection.execute(sql)
        }
    }

    /// Drops database `name` if it exists, disconnecting its sessions first (`WITH (FORCE)`).
    public func dropDatabase(_ name: String) async throws {
        try await withAdminConnection { connection in
            try await connection.execute(
                "DROP DATABASE IF EXISTS \(try await connection.escapeIdentifier(name)) WITH (FORCE)")
        }
    }

    /// Runs `body` with a connection to the `postgres` database and closes it afterwards.
    private func withAdminConnection(_ body: (PostgresConnection) async throws -> Void) async throws {
        try await PostgresConnection.withConnection(connectionString, applicationName: "EmbeddedPostgres", body)
    }

    /// Builds the `pg_ctl -o` options: socket directory, port, no TCP, then `settings`.
    private func serverOptions() throws -> String {
        var options = "-k \(Self.shellQuoted(directory.path)) -p \(port) -c listen_addresses=''"
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) {
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }) else {
                throw EmbeddedPostgresError(
                    command: "pg_ctl start", status: nil,
                    output: "invalid setting name \"\(name)\"; use letters, digits, _ and . only",
                    serverLogTail: "")
            }
            options += " -c \(name)=\(Self.shellQuoted(value))"
        }
        return options
    }

    private var logFile: URL {
        directory.appendingPathComponent("server.log")
    }

    /// Creates the directory, and as root gives it to the `postgres` user, because initdb and the
    /// server run as that user and need to own it.
    private func prepareDirectory() throws {
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if getuid() == 0 {
            try runChecked("/bin/chown", ["-R", "postgres:", directory.path], asServerUser: false)
        }
    }

    private func initializeCluster() throws {
        try runChecked("initdb", [
            "-D", directory.path, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8",
            "--no-sync",
        ])
    }

    /// Runs a server command and throws with its output and the server log when it fails.
    private func runChecked(_ program: String, _ arguments: [String], asServerUser: Bool = true) throws {
        let result = try commands.run(program, arguments, asServerUser: asServerUser)
        guard result.status == 0 else {
            throw EmbeddedPostgresError(
                command: ([program] + arguments).joined(separator: " "), status: result.status,
                output: result.output, serverLogTail: serverLogTail())
        }
    }

    /// Returns the last 20 lines of `server.log`, or an empty string when there is none.
    public func serverLogTail(lines: Int = 20) -> String {
        guard let data = FileManager.default.contents(atPath: logFile.path) else { return "" }
        let text = String(decoding: data, as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines)
            .joined(separator: "\n")
    }

    /// Quotes a value for a libpq connection string.
    private static func quoted(_ value: String) -> String {
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "'", with: "\\'")
        return "'\(escaped)'"
    }

    /// Quotes a value for the shell that `pg_ctl` passes `-o` options through.
    private static func shellQuoted(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
