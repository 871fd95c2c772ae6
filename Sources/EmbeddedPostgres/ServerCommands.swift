import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs PostgreSQL's server programs, as the `postgres` user when this process is root.
struct ServerCommands: Sendable {
    /// The directory with initdb, pg_ctl and pg_isready.
    let binDirectory: String

    /// Returns `pg_config --bindir`, or Debian's PostgreSQL 15 directory when pg_config is
    /// missing.
    static func findBinDirectory() -> String {
        let fallback = "/usr/lib/postgresql/15/bin"
        guard let result = try? run(executable: "/usr/bin/env", ["pg_config", "--bindir"]),
            result.status == 0
        else { return fallback }
        let path = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        return path.isEmpty ? fallback : path
    }

    /// Runs `program` (a name in `binDirectory`, or an absolute path) and waits for it.
    func run(_ program: String, _ arguments: [String], asServerUser: Bool) throws -> (status: Int32, output: String) {
        let path = program.hasPrefix("/") ? program : "\(binDirectory)/\(program)"
        if asServerUser, getuid() == 0 {
            return try Self.run(executable: "/usr/sbin/runuser", ["-u", "postgres", "--", path] + arguments)
        }
        return try Self.run(executable: path, arguments)
    }

    /// Runs a program with standard output and standard error collected in a temporary file and
    /// waits for it.
    ///
    /// Uses posix_spawn and waitpid rather than Foundation's `Process`, whose `waitUntilExit`
    /// was seen to hang on Linux (swift-corelibs-foundation in Swift 6.3) with the child
    /// already exited but never reaped. A file, not a pipe, collects the output because
    /// `pg_ctl start` leaves the server running with inherited descriptors.
    static func run(executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let commandLine = ([executable] + arguments).joined(separator: " ")
        var template = Array("/tmp/sluice-command-XXXXXX".utf8CString)
        let outputDescriptor = mkstemp(&template)
        guard outputDescriptor >= 0 else {
            throw EmbeddedPostgresError(
                command: commandLine, status: nil,
                output: "could not create an output file: \(String(cString: strerror(errno)))", serverLogTail: "")
        }
        let outputPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer {
            close(outputDescriptor)
            unlink(outputPath)
        }

        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&fileActions, outputDescriptor, 1)
        posix_spawn_file_actions_adddup2(&fileActions, outputDescriptor, 2)

        let argumentCopies = ([executable] + arguments).map { strdup($0) }
        defer {
            for copy in argumentCopies {
                free(copy)
            }
        }
        var processID: pid_t = 0
        let spawnResult = posix_spawn(&processID, executable, &fileActions, nil, argumentCopies + [nil], environ)
        guard spawnResult == 0 else {
            throw EmbeddedPostgresError(
                command: commandLine, status: nil,
                output: "could not start: \(String(cString: strerror(spawnResult)))", serverLogTail: "")
        }

        var status: Int32 = 0
        while waitpid(processID, &status, 0) < 0 {
            guard errno == EINTR else {
                throw EmbeddedPostgresError(
                    command: commandLine, status: nil,
                    output: "waitpid failed: \(String(cString: strerror(errno)))", serverLogTail: "")
            }
        }
        // WIFEXITED and WEXITSTATUS are macros Swift cannot import: the low 7 bits are the
        // terminating signal (0 when the program exited) and the next 8 bits the exit status.
        let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return (exitStatus, text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
