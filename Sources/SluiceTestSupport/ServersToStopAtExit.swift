import EmbeddedPostgres
import Foundation

/// The test servers to stop when the process exits, through a C `atexit` handler.
enum ServersToStopAtExit {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var servers: [EmbeddedPostgres] = []
    nonisolated(unsafe) private static var isHandlerInstalled = false

    /// Adds a server to stop at exit, installing the handler on first use.
    static func register(_ server: EmbeddedPostgres) {
        lock.lock()
        defer { lock.unlock() }
        servers.append(server)
        if !isHandlerInstalled {
            isHandlerInstalled = true
            atexit {
                ServersToStopAtExit.stopAll()
            }
        }
    }

    /// Stops every registered server at once and removes its directory; errors are ignored
    /// because the process is exiting.
    private static func stopAll() {
        lock.lock()
        let toStop = servers
        servers.removeAll()
        lock.unlock()
        for server in toStop {
            try? server.stop(mode: .immediate)
            try? FileManager.default.removeItem(at: server.directory)
        }
    }
}
