import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// A fresh database with the extension, a client on it and a connection for assertions.
struct FlowFixture {
    let database: TestDatabase
    let client: SluiceClient
    let sql: PostgresConnection

    static func make() async throws -> FlowFixture {
        let database = try await TestPostgres.shared.makeDatabase()
        let client = try await SluiceClient(connection: database.connectionString)
        return FlowFixture(database: database, client: client, sql: try await database.connect())
    }

    func close() async {
        await client.close()
        await sql.close()
    }

    /// Returns the single integer of a query's first row.
    func integer(_ query: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> Int {
        try await sql.query(query, parameters)[0].decode(Int.self, at: 0)
    }

    /// Returns the single floating-point number of a query's first row.
    func double(_ query: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> Double {
        try await sql.query(query, parameters)[0].decode(Double.self, at: 0)
    }

    /// Calls `sluice.tick()` every `interval` on a connection of its own, as the coordinator
    /// would, until the returned task is cancelled.
    func startTicking(every interval: Duration = .milliseconds(20)) -> Task<Void, Error> {
        Task {
            let connection = try await database.connect(applicationName: "flow-test-tick")
            defer {
                Task { await connection.close() }
            }
            while !Task.isCancelled {
                do {
                    try await connection.execute("SELECT * FROM sluice.tick()")
                } catch {
                    // Recorded, and the loop goes on as the coordinator would.
                    Issue.record("sluice.tick() failed: \(error)")
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// A worker in this process with test-friendly timings and no signal handlers.
    func worker(
        _ name: String, tasks: [any AnyTaskDefinition], slots: Int = 10, labels: [String: LabelValue] = [:]
    ) -> Worker {
        Worker(
            client: client, name: name, slots: slots, tasks: tasks, labels: labels, leaseTimeout: .seconds(3),
            drainTimeout: .seconds(5), pollInterval: .milliseconds(50), handleSignals: false)
    }
}

/// The input of the flow test tasks.
struct FlowInput: Codable, Sendable {
    var key: String
    var hang: Bool?
}

/// The tasks that the SluiceFlowWorker fixture runs, declared with the same options so that the
/// tests can define and enqueue them. The handlers here never run.
enum FlowTasks {
    static let stress = Sluice.task(
        "flow-stress", retries: .fixed(maxAttempts: 3, delay: .zero), timeout: .seconds(60),
        concurrency: [.perKey("$.key", max: 2)]
    ) { (_: FlowInput, _: TaskContext) in }

    static let solo = Sluice.task(
        "flow-solo", retries: .none, timeout: .seconds(300), concurrency: [.perKey("$.key", max: 1)]
    ) { (_: FlowInput, _: TaskContext) in }
}

/// Starts and kills SluiceFlowWorker processes.
enum FlowWorkerProcess {

    /// Starts a worker process for `task` named `name`.
    static func launch(_ fixture: FlowFixture, name: String, task: String) throws -> Process {
        let process = Process()
        process.executableURL = try testExecutable(named: "SluiceFlowWorker")
        process.arguments = [fixture.database.connectionString, name, task]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Sends SIGKILL and waits for the process to exit.
    static func kill9(_ process: Process) {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }
}


/// Runs `body` with a SluiceError expected: the test fails unless it throws one with `code`
/// whose message contains every string in `fragments`.
func expectSluiceError(
    _ code: SluiceError.Code, containing fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("no error thrown; expected \(code) containing \(fragments)", sourceLocation: sourceLocation)
    } catch let error as SluiceError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("unexpected error \(error); expected \(code)", sourceLocation: sourceLocation)
    }
}
