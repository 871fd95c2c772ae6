import Foundation
import SluicePostgres

/// Thrown by `waitUntil` when its condition did not hold in time.
public struct WaitTimedOut: Error, CustomStringConvertible {
    public let description: String
}

/// Waits until `condition` returns true, checking every `interval`, and throws `WaitTimedOut`
/// naming `description` after `timeout`.
public func waitUntil(
    _ description: String, timeout: Duration = .seconds(10), interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            throw WaitTimedOut(description: "timed out after \(timeout) waiting until \(description)")
        }
        try await Task.sleep(for: interval)
    }
}

/// Returns the process IDs of the backends of the connection's database that hold the advisory
/// lock taken with `pg_advisory_lock(keys.0, keys.1)`.
public func advisoryLockHolders(_ connection: PostgresConnection, keys: (Int32, Int32)) async throws -> [Int32] {
    let rows = try await connection.query(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            + "AND classid = $1::int::oid AND objid = $2::int::oid AND objsubid = 2 "
            + "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [keys.0, keys.1])
    return try rows.map { try $0.decode(Int32.self, at: 0) }
}

/// Thrown by `testExecutable(named:)` when no such executable was built.
public struct TestExecutableNotFound: Error, CustomStringConvertible {
    public let description: String
}

/// Returns the executable `name` that SwiftPM builds next to the test bundle, for tests that
/// start worker processes.
public func testExecutable(named name: String) throws -> URL {
    var directories = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
    if let index = CommandLine.arguments.firstIndex(of: "--test-bundle-path"), index + 1 < CommandLine.arguments.count {
        directories.append(URL(fileURLWithPath: CommandLine.arguments[index + 1]).deletingLastPathComponent())
    }
    directories.append(Bundle.main.bundleURL)
    for directory in directories {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
    }
    throw TestExecutableNotFound(
        description: "\(name) not found next to the test bundle in \(directories.map(\.path))")
}
