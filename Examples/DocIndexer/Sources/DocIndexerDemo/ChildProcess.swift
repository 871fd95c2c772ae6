import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A program started with `posix_spawn`, its standard output and standard error written to a
/// file, and reaped by a thread of its own.
///
/// Foundation's `Process` is not used: its `waitUntilExit` was seen to hang on Linux
/// (swift-corelibs-foundation in Swift 6.3), as noted in EmbeddedPostgres's ServerCommands.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `status` and `waiters` are read and written only while `lock` is held.
    let processID: pid_t
    let commandLine: String
    private let lock = NSLock()
    private var status: Int32?
    private var waiters: [CheckedContinuation<Int32, Never>] = []

    /// Starts `executable` with `arguments`, standard input from /dev/null and both output
    /// streams appended to `outputPath`.
    init(executable: String, arguments: [String], outputPath: String) throws {
        commandLine = ([executable] + arguments).joined(separator: " ")
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)

        let argumentCopies = ([executable] + arguments).map { strdup($0) }
        defer {
            for copy in argumentCopies {
                free(copy)
            }
        }
        var processID: pid_t = 0
        let result = posix_spawn(&processID, executable, &fileActions, nil, argumentCopies + [nil], environ)
        guard result == 0 else {
            throw DemoError(message: "could not start \(executable): \(String(cString: strerror(result)))")
        }
        self.processID = processID
        Thread.detachNewThread { [self] in reap() }
    }

    /// The exit status once the program ended (128 plus the signal number when a signal ended
    /// it), or nil while it runs.
    var exitStatus: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return status
    }

    /// Sends `signalNumber` to the program unless it already ended.
    func send(_ signalNumber: Int32) {
        if exitStatus == nil {
            kill(processID, signalNumber)
        }
    }

    /// Waits for the program to end and returns its exit status.
    func waitForExit() async -> Int32 {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let status {
                lock.unlock()
                continuation.resume(returning: status)
                return
            }
            waiters.append(continuation)
            lock.unlock()
        }
    }

    private func reap() {
        var rawStatus: Int32 = 0
        while waitpid(processID, &rawStatus, 0) < 0 && errno == EINTR {}
        // WIFEXITED and WEXITSTATUS are macros Swift cannot import: the low 7 bits are the
        // terminating signal (0 when the program exited) and the next 8 bits the exit status.
        let exitStatus = rawStatus & 0x7f == 0 ? (rawStatus >> 8) & 0xff : 128 + (rawStatus & 0x7f)
        lock.lock()
        status = exitStatus
        let toResume = waiters
        waiters.removeAll()
        lock.unlock()
        for waiter in toResume {
            waiter.resume(returning: exitStatus)
        }
    }
}
