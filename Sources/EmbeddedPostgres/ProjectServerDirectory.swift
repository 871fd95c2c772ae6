import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a project keeps its embedded server: `<project>/postgres`, or a directory under
/// `/tmp` that `<project>/postgres` links to.
///
/// As root the server runs as the `postgres` user, which must be able to traverse every
/// directory above the data directory. A project under a directory that user cannot enter
/// (such as `/root`, mode 0700) gets its data directory at `/tmp/sluice-dev-<hash>`, and
/// `<project>/postgres` becomes a symbolic link to it. The hash is of the project path, so the
/// same project finds the same server again.
public struct ProjectServerDirectory: Sendable {
    /// The data directory to give `EmbeddedPostgres`; never a symbolic link.
    public let directory: URL
    /// `<project>/postgres`, which is `directory` itself or a symbolic link to it.
    public let projectPath: URL
    /// Whether the data directory is outside the project because the `postgres` user cannot
    /// reach the project directory.
    public let isRedirected: Bool

    /// A one-line explanation of the redirection for the user, or nil when there is none.
    public var redirectionNote: String? {
        guard isRedirected else { return nil }
        return "The postgres user cannot reach \(projectPath.deletingLastPathComponent().path), so the server "
            + "lives in \(directory.path) and \(projectPath.path) links to it."
    }

    /// Creates `projectDirectory` (mode 0755) when missing and decides where its server lives,
    /// creating the symbolic link when the server must live under `/tmp`.
    ///
    /// - Throws: `EmbeddedPostgresError` when a directory or the link cannot be created, or when
    ///   `<project>/postgres` is a non-empty directory that the `postgres` user cannot reach.
    public static func prepare(projectDirectory: URL) throws -> ProjectServerDirectory {
        let project = projectDirectory.absoluteURL.standardizedFileURL
        let projectPath = project.appendingPathComponent("postgres")
        try createDirectory(project)

        guard getuid() == 0, !serverUserCanEnter(project) else {
            return ProjectServerDirectory(directory: projectPath, projectPath: projectPath, isRedirected: false)
        }

        let directory = URL(fileURLWithPath: "/tmp/sluice-dev-" + pathHash(project.path))
        try checkOwnership(of: directory)
        try linkProjectPath(projectPath, to: directory)
        return ProjectServerDirectory(directory: directory, projectPath: projectPath, isRedirected: true)
    }

    /// Returns whether the `postgres` user can traverse every directory down to `directory`,
    /// by running `test -x` as that user.
    private static func serverUserCanEnter(_ directory: URL) -> Bool {
        let result = try? ServerCommands.run(
            executable: "/usr/sbin/runuser", ["-u", "postgres", "--", "/usr/bin/test", "-x", directory.path])
        return result?.status == 0
    }

    /// Throws unless `directory` is missing or a real directory owned by root or `postgres`,
    /// because `/tmp` is writable by every user and another user could have placed a link or
    /// a directory of their own at the predictable name.
    private static func checkOwnership(of directory: URL) throws {
        var status = stat()
        guard lstat(directory.path, &status) == 0 else {
            return
        }
        let serverUserID = getpwnam("postgres")?.pointee.pw_uid
        let isDirectory = status.st_mode & S_IFMT == S_IFDIR
        guard isDirectory, status.st_uid == 0 || status.st_uid == serverUserID else {
            throw EmbeddedPostgresError(
                command: "lstat \(directory.path)", status: nil,
                output: "\(directory.path) exists but is not a directory owned by root or postgres; "
                    + "remove it and start again",
                serverLogTail: "")
        }
    }

    /// Makes `link` a symbolic link to `target`, replacing a link to elsewhere or an empty
    /// directory left by an earlier failed start.
    private static func linkProjectPath(_ link: URL, to target: URL) throws {
        let fileManager = FileManager.default
        if let existing = try? fileManager.destinationOfSymbolicLink(atPath: link.path) {
            if existing == target.path {
                return
            }
            try removeItem(link)
        } else if fileManager.fileExists(atPath: link.path) {
            let contents = (try? fileManager.contentsOfDirectory(atPath: link.path)) ?? ["?"]
            guard contents.isEmpty else {
                throw EmbeddedPostgresError(
                    command: "ln -s \(target.path) \(link.path)", status: nil,
                    output: "\(link.path) already exists and is not empty, but the postgres user cannot reach it; "
                        + "move the project to a directory the postgres user can enter, or remove \(link.path)",
                    serverLogTail: "")
            }
            try removeItem(link)
        }
        do {
            try fileManager.createSymbolicLink(at: link, withDestinationURL: target)
        } catch {
            throw EmbeddedPostgresError(
                command: "ln -s \(target.path) \(link.path)", status: nil, output: "\(error)", serverLogTail: "")
        }
    }

    private static func createDirectory(_ directory: URL) throws {
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            throw EmbeddedPostgresError(
                command: "mkdir -p \(directory.path)", status: nil, output: "\(error)", serverLogTail: "")
        }
    }

    private static func removeItem(_ item: URL) throws {
        do {
            try FileManager.default.removeItem(at: item)
        } catch {
            throw EmbeddedPostgresError(command: "rm \(item.path)", status: nil, output: "\(error)", serverLogTail: "")
        }
    }

    /// Returns the 64-bit FNV-1a hash of `path` as 16 hexadecimal digits. It only needs to
    /// tell projects apart on one machine, not resist collisions on purpose.
    static func pathHash(_ path: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in path.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
