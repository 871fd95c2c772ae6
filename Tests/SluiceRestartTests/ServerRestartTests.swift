import EmbeddedPostgres
import Foundation
import Sluice
import SluiceCoordinator
import SluicePostgres
import SluiceTestSupport
import Testing

/// A worker and a coordinator in this process keep working across a PostgreSQL restart: the
/// server is stopped (fast mode) while runs execute, kept down for a second and started again.
@Suite(.timeLimit(.minutes(1))) struct ServerRestartTests {
    struct EchoInput: Codable, Sendable {
        var number: Int
        /// Fail the first attempt with a retryable error.
        var failFirstAttempt: Bool
    }

    struct EchoOutput: Codable, Sendable {
        var doubled: Int
        var attempt: Int
    }

    struct FirstAttemptFailure: Error {}

    /// The handler executions by run id, to tell at-least-once execution from a double completion.
    actor ExecutionLog {
        private(set) var attemptsByRun: [Int64: [Int]] = [:]

        func record(runID: Int64, attempt: Int) {
            attemptsByRun[runID, default: []].append(attempt)
        }
    }

    static let immediateCount = 200
    static let delayedCount = 60
    static let failingCount = 60

    @Test func workerAndCoordinatorSurviveRestart() async throws {
        let server = try await TestPostgres.offCooperativePool { try TestPostgres.shared.makeDedicatedServer() }
        defer { try? server.stop(mode: .immediate) }
        try await server.createDatabase("restart")
        let connectionString = server.connectionString(database: "restart")
        let setup = try await PostgresConnection.connect(connectionString)
        try await setup.execute("CREATE EXTENSION sluice")
        try await Self.installFinalStateProbe(setup)

        let executions = ExecutionLog()
        let echo = Sluice.task(
            "restart-echo", retries: .fixed(maxAttempts: 10, delay: .milliseconds(200)), timeout: .seconds(30)
        ) { (input: EchoInput, context: TaskContext) -> EchoOutput in
            await executions.record(runID: context.runID, attempt: context.attempt)
            try await Task.sleep(for: .milliseconds(20))
            if input.failFirstAttempt && context.attempt == 1 {
                throw FirstAttemptFailure()
            }
            return EchoOutput(doubled: input.number * 2, attempt: context.attempt)
        }

        // Enqueue: immediate runs, runs delayed 1 to 3 s (due around the restart) and runs whose
        // first attempt fails.
        let client = try await SluiceClient(connection: connectionString)
        try await client.define(echo)
        var inputsByRun: [Int64: EchoInput] = [:]
        let immediate = (0..<Self.immediateCount).map { EchoInput(number: $0, failFirstAttempt: false) }
        for (handle, input) in zip(try await client.enqueueMany(echo, immediate), immediate) {
            inputsByRun[handle.id] = input
        }
        for index in 0..<Self.delayedCount {
            let input = EchoInput(number: 10_000 + index, failFirstAttempt: false)
            let delay = Duration.milliseconds(1000 + 2000 * index / Self.delayedCount)
            inputsByRun[try await client.enqueue(echo, input, options: EnqueueOptions(delay: delay)).id] = input
        }
        let failing = (0..<Self.failingCount).map { EchoInput(number: 20_000 + $0, failFirstAttempt: true) }
        for (handle, input) in zip(try await client.enqueueMany(echo, failing), failing) {
            inputsByRun[handle.id] = input
        }
        await client.close()

        let worker = Worker(
            client: try await SluiceClient(connection: connectionString), name: "restart-worker", slots: 4,
            tasks: [echo], leaseTimeout: .seconds(10), pollInterval: .milliseconds(200), handleSignals: false)
        let coordinator = Coordinator(
            connectionString: connectionString,
            options: CoordinatorOptions(
                leadershipRetryInterval: .milliseconds(200), maximumSleep: .seconds(1),
                reconnectPolicy: ReconnectPolicy(
                    initialDelay: .milliseconds(50), maximumDelay: .milliseconds(500), maximumAttempts: nil)),
            logger: NoOpLogger())
        let workerTask = Task { try await worker.run() }
        let coordinatorTask = Task { await coordinator.run() }

        // Restart while runs execute: some have succeeded, most have not.
        try await Self.waitUntil("50 runs succeeded", on: setup) { count in count >= 50 }
        let succeededBeforeStop = try await Self.countRuns(setup, status: "succeeded")
        await setup.close()
        try await TestPostgres.offCooperativePool { try server.stop(mode: .fast) }
        try await Task.sleep(for: .seconds(1))
        try await TestPostgres.offCooperativePool { try server.start() }
        #expect(succeededBeforeStop < inputsByRun.count / 2, "the restart came after most runs had finished")

        let observer = try await PostgresConnection.connect(connectionString)
        let total = inputsByRun.count
        try await Self.waitUntil("every run is final", on: observer, timeout: .seconds(25)) { _ in
            try await Self.countRuns(observer, status: "succeeded") + Self.countRuns(observer, status: "failed")
                + Self.countRuns(observer, status: "cancelled") == total
        }
        worker.shutdown()
        try await workerTask.value
        coordinator.stop()
        await coordinatorTask.value

        // Every run succeeded once, with the output computed from its own input.
        let rows = try await observer.query(
            "SELECT id, status::text, attempt, output, started_at >= run_at FROM sluice.runs WHERE task = 'restart-echo'")
        #expect(rows.count == total)
        for row in rows {
            let runID = try row.decode(Int64.self, at: 0)
            let status = try row.decode(String.self, at: 1)
            let attempt = try row.decode(Int.self, at: 2)
            guard let input = inputsByRun[runID] else {
                Issue.record("run \(runID) was not enqueued by this test")
                continue
            }
            #expect(status == "succeeded", "run \(runID)")
            guard status == "succeeded" else { continue }
            let output = try row.decode(PostgresJSON.self, at: 3).decode(EchoOutput.self)
            #expect(output.doubled == input.number * 2, "run \(runID)")
            #expect(output.attempt == attempt, "run \(runID): the output comes from the recorded attempt")
            #expect(try row.decode(Bool.self, at: 4), "run \(runID) started before its run_at")
            if input.failFirstAttempt {
                #expect(attempt >= 2, "run \(runID) failed its first attempt, so it succeeded on a later one")
            }
        }

        // No run reached a final state twice.
        let transitions = try await observer.query(
            "SELECT run_id, count(*)::int FROM restart_final_transitions GROUP BY run_id")
        #expect(transitions.count == total)
        for row in transitions {
            let runID = try row.decode(Int64.self, at: 0)
            #expect(try row.decode(Int.self, at: 1) == 1, "run \(runID) became final more than once")
        }
        let executedRuns = await executions.attemptsByRun.count
        #expect(executedRuns == total)
        await observer.close()
    }

    /// Records every update that leaves a run in a final state, so a second completion of the
    /// same run shows up as a second row.
    static func installFinalStateProbe(_ connection: PostgresConnection) async throws {
        try await connection.execute("CREATE TABLE restart_final_transitions (run_id bigint, status text)")
        try await connection.execute(
            """
            CREATE FUNCTION record_final_transition() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO restart_final_transitions VALUES (NEW.id, NEW.status::text);
                RETURN NEW;
            END $$
            """)
        try await connection.execute(
            """
            CREATE TRIGGER record_final_transition AFTER UPDATE ON sluice.runs FOR EACH ROW
            WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled', 'skipped'))
            EXECUTE FUNCTION record_final_transition()
            """)
    }

    static func countRuns(_ connection: PostgresConnection, status: String) async throws -> Int {
        let rows = try await connection.query(
            "SELECT count(*)::int FROM sluice.runs WHERE task = 'restart-echo' AND status = $1::sluice.run_status",
            [status])
        return try rows[0].decode(Int.self, at: 0)
    }

    /// Polls every 50 ms until `condition` returns true (it receives the succeeded count), or records
    /// an issue and throws after `timeout`.
    static func waitUntil(
        _ description: String, on connection: PostgresConnection, timeout: Duration = .seconds(10),
        _ condition: (Int) async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let succeeded = try await countRuns(connection, status: "succeeded")
            if try await condition(succeeded) {
                return
            }
            if ContinuousClock.now > deadline {
                Issue.record("timed out waiting until \(description); \(succeeded) runs succeeded")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
