import EmbeddedPostgres
import Foundation
import SluicePostgres
import SluiceTestSupport
import Testing

/// Runs blocking server commands off the cooperative thread pool.
private func blocking<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await TestPostgres.offCooperativePool(work)
}

/// Returns the result of `SELECT 1` through a new connection.
private func selectOne(_ connectionString: String) async throws -> Int {
    let connection = try await PostgresConnection.connect(connectionString)
    let rows = try await connection.query("SELECT 1")
    await connection.close()
    return try rows.first?.decode(Int.self, at: 0) ?? 0
}

@Suite struct EmbeddedPostgresTests {
    @Test func startStopRestart() async throws {
        let server = try await blocking { try TestPostgres.shared.makeDedicatedServer() }
        #expect(server.isRunning)
        #expect(try await selectOne(server.connectionString) == 1)

        try await blocking { try server.stop() }
        #expect(!server.isRunning)
        await #expect(throws: PostgresError.self) { try await selectOne(server.connectionString) }

        try await blocking { try server.start() }
        #expect(server.isRunning)
        #expect(try await selectOne(server.connectionString) == 1)

        try await blocking { try server.restart(mode: .immediate) }
        #expect(server.isRunning)
        #expect(try await selectOne(server.connectionString) == 1)

        try await blocking { try server.stop(mode: .immediate) }
        try await blocking { try server.stop() }  // Stopping a stopped server does nothing.
        #expect(!server.isRunning)
    }

    @Test func startReusesRunningServer() async throws {
        let server = try await blocking { try TestPostgres.shared.makeDedicatedServer() }
        let processIDBefore = try String(contentsOf: server.directory.appendingPathComponent("postmaster.pid"), encoding: .utf8)

        let second = EmbeddedPostgres(directory: server.directory, port: server.port)
        try await blocking { try second.start() }
        #expect(second.isRunning)
        let processIDAfter = try String(contentsOf: server.directory.appendingPathComponent("postmaster.pid"), encoding: .utf8)
        #expect(processIDBefore == processIDAfter)
        #expect(try await selectOne(second.connectionString) == 1)

        try await blocking { try server.stop(mode: .immediate) }
    }

    @Test func createAndDropDatabase() async throws {
        let server = try await TestPostgres.shared.server()
        let name = "embedded_\(UInt32.random(in: 0...UInt32.max))"
        try await server.createDatabase(name, template: "template0")
        #expect(try await selectOne(server.connectionString(database: name)) == 1)
        #expect(server.connectionString(database: name).contains("dbname='\(name)'"))

        try await server.dropDatabase(name)
        let error = try await #require(throws: PostgresError.self) {
            try await selectOne(server.connectionString(database: name))
        }
        #expect(error.kind == .connectionFailed)
        try await server.dropDatabase(name)  // Dropping a missing database does nothing.
    }

    @Test func failedStartReportsCommandAndServerLog() async throws {
        let directory = URL(fileURLWithPath: "/tmp/sluice-test-bad-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = EmbeddedPostgres(
            directory: directory, port: Int.random(in: 20_000...60_000),
            settings: ["max_connections": "not-a-number"])

        let error = try await #require(throws: EmbeddedPostgresError.self) {
            try await blocking { try server.start() }
        }
        #expect(error.command.contains("pg_ctl start"))
        #expect(error.serverLogTail.contains("max_connections"))
        #expect(error.description.contains("server.log"))
        #expect(!server.isRunning)
    }

    @Test func invalidSettingNameIsRejected() async throws {
        let directory = URL(fileURLWithPath: "/tmp/sluice-test-bad-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = EmbeddedPostgres(directory: directory, settings: ["fsync=off -c x": "y"])
        let error = try await #require(throws: EmbeddedPostgresError.self) {
            try await blocking { try server.start() }
        }
        #expect(error.output.contains("invalid setting name"))
    }
}
