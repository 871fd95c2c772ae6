import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// A worker process killed with SIGKILL mid-run: the run is requeued after the lease timeout
/// and a new incarnation completes it exactly once.
@Suite struct WorkerCrashTests {
    struct Probe: Codable, Sendable {
        var label: String
    }


    static func launch(_ connectionString: String) throws -> Process {
        let process = Process()
        process.executableURL = try testExecutable(named: "SluiceTestWorker")
        process.arguments = [connectionString, "crash-worker"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    @Test func killedWorkerRunCompletesOnce() async throws {
        let fixture = try await SluiceFixture.make()
        try await fixture.sql.execute("CREATE TABLE probe_starts (run_id bigint, attempt int, pid int)")
        try await fixture.sql.execute("CREATE TABLE probe_completions (run_id bigint)")
        let probe = Sluice.task("crash-probe", retries: .fixed(maxAttempts: 3, delay: .zero), timeout: .seconds(300)) {
            (input: Probe, _: TaskContext) in input
        }
        try await fixture.client.define(probe)
        let run = try await fixture.client.enqueue(probe, Probe(label: "crash"))

        let first = try Self.launch(fixture.database.connectionString)
        try await waitUntil("the first process started the run", timeout: .seconds(20)) {
            try await fixture.sql.query("SELECT 1 FROM probe_starts WHERE attempt = 1").count == 1
        }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()

        // The lease timeout is 2 s; the coordinator's tick requeues the run once it passed.
        try await waitUntil("the run was requeued", timeout: .seconds(15)) {
            try await fixture.tick()
            return try await fixture.status(run.id) == "queued"
        }

        let second = try Self.launch(fixture.database.connectionString)
        defer {
            if second.isRunning {
                kill(second.processIdentifier, SIGKILL)
            }
        }
        #expect(try await run.result(timeout: .seconds(20)).label == "crash")
        second.terminate()
        second.waitUntilExit()

        #expect(try await run.info().attempt == 2)
        let completions = try await fixture.sql.query("SELECT count(*)::int FROM probe_completions")
        #expect(try completions[0].decode(Int.self, at: 0) == 1)
        let starts = try await fixture.sql.query("SELECT count(DISTINCT pid)::int FROM probe_starts")
        #expect(try starts[0].decode(Int.self, at: 0) == 2)
        let workers = try await fixture.sql.query(
            "SELECT count(DISTINCT id)::int FROM sluice.workers WHERE name = 'crash-worker'")
        #expect(try workers[0].decode(Int.self, at: 0) == 2)
        await fixture.close()
    }
}
