import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// A fresh database with the extension, a client on it and a connection for assertions.
struct SluiceFixture {
    let database: TestDatabase
    let client: SluiceClient
    let sql: PostgresConnection
    let logger: CapturingLogger

    static func make() async throws -> SluiceFixture {
        let database = try await TestPostgres.shared.makeDatabase()
        let logger = CapturingLogger()
        let client = try await SluiceClient(connection: database.connectionString, logger: logger)
        return SluiceFixture(database: database, client: client, sql: try await database.connect(), logger: logger)
    }

    /// Starts `worker.run()` in a Swift task; `stop` shuts it down and waits for it.
    func start(_ worker: Worker) -> Task<Void, Error> {
        Task { try await worker.run() }
    }

    func close() async {
        await client.close()
        await sql.close()
    }

    /// Returns the run's status by a direct query.
    func status(_ runID: Int64) async throws -> String {
        try await sql.query("SELECT status::text FROM sluice.runs WHERE id = $1", [runID])[0].decode(String.self, at: 0)
    }

    /// Calls `sluice.tick()` once, as the coordinator would.
    func tick() async throws {
        try await sql.execute("SELECT * FROM sluice.tick()")
    }
}


/// A logger that keeps every event, for tests that check what was logged.
final class CapturingLogger: SluiceLogger, @unchecked Sendable {
    // @unchecked: `events` is guarded by `lock`.
    struct Event: Sendable {
        var level: LogLevel
        var message: String
        var metadata: [String: String]
    }

    private let lock = NSLock()
    private var storedEvents: [Event] = []

    var events: [Event] {
        lock.lock()
        defer { lock.unlock() }
        return storedEvents
    }

    func log(level: LogLevel, message: String, metadata: [String: String]) {
        lock.lock()
        storedEvents.append(Event(level: level, message: message, metadata: metadata))
        lock.unlock()
    }
}

/// A counter shared between handlers and the test.
final class Counter: @unchecked Sendable {
    // @unchecked: the values are guarded by `lock`.
    private let lock = NSLock()
    private var current = 0
    private var highest = 0

    /// Adds `delta` and returns the new value.
    @discardableResult
    func add(_ delta: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        current += delta
        highest = max(highest, current)
        return current
    }

    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// The highest value ever reached.
    var maximum: Int {
        lock.lock()
        defer { lock.unlock() }
        return highest
    }
}

struct Numbers: Codable, Sendable, Equatable {
    var a: Int
    var b: Int
}

struct Sum: Codable, Sendable, Equatable {
    var sum: Int
}

struct Blob: Codable, Sendable {
    var text: String
}
