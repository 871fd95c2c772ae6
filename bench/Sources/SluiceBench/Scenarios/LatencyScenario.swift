import Foundation
import Sluice
import SluicePostgres

/// Enqueue-to-start and enqueue-to-completion latency, with the producer and the consumer in
/// this process so that both read one monotonic clock.
///
/// The consumer is two claim loops (batch 50), each registered as its own worker, that wait on
/// LISTEN sluice_ready when the queue is empty. "Start" is the first line of the handler;
/// "completion" is when `sluice.complete` has returned, so the run's success is committed.
enum LatencyScenario {
    static let consumer = DrainConfig(processes: 1, loops: 2, batchSize: 50)

    static func run(_ context: ScenarioContext) async throws {
        let report = context.report
        let seconds = context.quick ? 1.0 : 30.0

        let floor = try await measure(context, rate: 100, seconds: seconds, queue: .floor)
        report.add(.latency, "floor, 100/s: enqueue to start p50", floor.start.p50, "ms")
        report.add(.latency, "floor, 100/s: enqueue to start p95", floor.start.p95, "ms")
        report.add(.latency, "floor, 100/s: enqueue to start p99", floor.start.p99, "ms", note: "\(floor.start.count) runs")
        report.add(.latency, "floor, 100/s: enqueue to completion p50", floor.completion.p50, "ms")
        report.add(.latency, "floor, 100/s: enqueue to completion p99", floor.completion.p99, "ms")

        let idle = try await measure(context, rate: 100, seconds: seconds)
        report.add(.latency, "100/s: enqueue to start p50", idle.start.p50, "ms")
        report.add(.latency, "100/s: enqueue to start p95", idle.start.p95, "ms")
        report.add(.latency, "100/s: enqueue to start p99", idle.start.p99, "ms", note: "\(idle.start.count) runs")
        report.add(.latency, "100/s: enqueue to completion p50", idle.completion.p50, "ms")
        report.add(.latency, "100/s: enqueue to completion p95", idle.completion.p95, "ms")
        report.add(.latency, "100/s: enqueue to completion p99", idle.completion.p99, "ms")
        report.check("latency at 100/s, enqueue to start p50", measured: String(format: "%.2f ms", idle.start.p50),
                     target: "<= 1 ms", met: idle.start.p50 <= 1)
        report.check("latency at 100/s, enqueue to start p99", measured: String(format: "%.2f ms", idle.start.p99),
                     target: "<= 3 ms", met: idle.start.p99 <= 3)

        let sdk = try await measureSDK(context, rate: 100, seconds: seconds)
        report.add(.latency, "SDK Worker, 100/s: enqueue to start p50", sdk.p50, "ms")
        report.add(.latency, "SDK Worker, 100/s: enqueue to start p95", sdk.p95, "ms")
        report.add(.latency, "SDK Worker, 100/s: enqueue to start p99", sdk.p99, "ms", note: "\(sdk.count) runs")
        report.check("SDK Worker latency at 100/s, enqueue to start p50", measured: String(format: "%.2f ms", sdk.p50),
                     target: "<= 1 ms", met: sdk.p50 <= 1)
        report.check("SDK Worker latency at 100/s, enqueue to start p99", measured: String(format: "%.2f ms", sdk.p99),
                     target: "<= 3 ms", met: sdk.p99 <= 3)

        let maximum = try await maximumRate(context)
        report.add(.latency, "consumer maximum, with the producer running", maximum, "runs/s")
        // The maximum holds for the length of its measurement, so the loaded phase runs as long.
        // A consumer that still falls behind is a result, not a failure: the percentiles then
        // cover the runs that completed, and the note gives their number.
        let half = max(maximum / 2, 100)
        let loaded = try await measure(context, rate: half, seconds: context.measureSeconds, requireAll: false)
        let label = String(format: "%.0f/s (half of maximum)", half)
        let drained = loaded.completed == loaded.expected
            ? "\(loaded.start.count) runs"
            : "only \(loaded.completed) of \(loaded.expected) runs completed within 10 s of the last enqueue"
        report.add(.latency, "\(label): enqueue to start p50", loaded.start.p50, "ms")
        report.add(.latency, "\(label): enqueue to start p95", loaded.start.p95, "ms")
        report.add(.latency, "\(label): enqueue to start p99", loaded.start.p99, "ms", note: drained)
        report.add(.latency, "\(label): enqueue to completion p50", loaded.completion.p50, "ms")
        report.add(.latency, "\(label): enqueue to completion p99", loaded.completion.p99, "ms")
    }

    /// Returns the runs per second the consumer completes while a producer in this process
    /// keeps up to 5,000 runs waiting. Both share the machine, as they do in the latency runs,
    /// so half of this rate is a load the pair can sustain.
    private static func maximumRate(_ context: ScenarioContext) async throws -> Double {
        try await context.database.reset()
        let consumers = try await openConsumer(context)
        let stopFlag = StopFlag()
        let producer = Task {
            try await EndToEndScenario.produce(context, until: stopFlag, backlogLimit: 5_000, batchSize: 100)
        }
        let steps: [DrainStep] = consumers.map {
            SluiceStep(connection: $0.connection, workerID: $0.workerID, batchSize: consumer.batchSize)
        }
        let (stats, elapsed) = try await context.drain(steps, seconds: context.measureSeconds, stopWhenEmpty: false)
        stopFlag.stop()
        _ = try await producer.value
        for loop in consumers {
            await loop.connection.close()
        }
        return Double(stats.completed) / elapsed
    }

    /// Opens a connection for each consumer loop and registers each loop as a worker. Loops
    /// that shared one worker id would share its waiting state in `sluice.waiting_workers`: a
    /// loop whose claim filled its batch ended the wait of a loop that had found nothing, and
    /// that loop then slept until its next poll.
    private static func openConsumer(
        _ context: ScenarioContext
    ) async throws -> [(connection: PostgresConnection, workerID: UUID)] {
        var loops: [(connection: PostgresConnection, workerID: UUID)] = []
        for index in 0..<consumer.loops {
            let connection = try await context.database.connect("consumer \(index)")
            let workerID = try await BenchDatabase.registerWorker(
                connection, name: "bench-latency-\(index)", slots: consumer.batchSize)
            loops.append((connection, workerID))
        }
        return loops
    }

    /// The queue a latency measurement goes through.
    enum Queue {
        /// Sluice: `sluice.enqueue`, and claim loops that wait in `sluice.claim_or_wait`.
        case sluice
        /// The floor's tables: an insert that notifies `bench_floor` in its transaction, and
        /// `FloorStep` loops that wait on `LISTEN bench_floor`.
        case floor

        var channel: String { self == .sluice ? "sluice_ready" : "bench_floor" }
    }

    /// How long one `sluice.claim_or_wait` of the consumer waits. A stop waits at most as long.
    static let serverWaitSeconds = 0.1

    static let floorEnqueueSQL =
        "WITH job AS (INSERT INTO bench_floor.jobs (input) VALUES ($1) RETURNING id) "
        + "SELECT pg_catalog.pg_notify('bench_floor', '') FROM job"

    /// Enqueues at `rate` runs per second for `seconds` while the consumer runs, and returns the
    /// latency percentiles. Up to 200/s each run is one enqueue call at its scheduled time.
    /// Above that, the producer sends one `enqueue_many` every 10 ms with the runs due.
    private static func measure(
        _ context: ScenarioContext, rate: Double, seconds: Double, queue: Queue = .sluice, requireAll: Bool = true
    ) async throws -> (start: Percentiles, completion: Percentiles, completed: Int, expected: Int) {
        precondition(queue == .sluice || rate <= 200, "the floor producer sends one job per call")
        try await context.database.reset()
        let recorder = LatencyRecorder()
        let loops = try await openConsumer(context)
        let stopFlag = StopFlag()
        // Sluice's loops wait in the server (`sluice.claim_or_wait`). The floor's loops wait on a
        // listening connection of this process, as any queue without that function would.
        var listener: PostgresListener?
        var relay: Task<Void, Never>?
        let limits: DrainLimits
        switch queue {
        case .sluice:
            limits = DrainLimits(deadline: .infinity, stopWhenEmpty: false, stopFlag: stopFlag, idlePollSeconds: 0.001)
        case .floor:
            let started = try await PostgresListener.start(
                context.database.connectionString, channels: [queue.channel], applicationName: "sluice-bench listener")
            let wake = WakeSignal()
            relay = Task {
                for await _ in started.notifications {
                    await wake.signal()
                }
            }
            listener = started
            limits = DrainLimits(
                deadline: .infinity, stopWhenEmpty: false, stopFlag: stopFlag, wakeSignal: wake, idlePollSeconds: 0.1)
        }
        let consumers = loops.map { loop in
            let step: DrainStep
            switch queue {
            case .sluice:
                step = SluiceStep(
                    connection: loop.connection, workerID: loop.workerID, batchSize: consumer.batchSize,
                    serverWaitSeconds: serverWaitSeconds,
                    onStart: { recorder.started($0) }, onComplete: { recorder.completed($0) })
            case .floor:
                step = FloorStep(
                    connection: loop.connection, batchSize: consumer.batchSize,
                    onStart: { recorder.started($0) }, onComplete: { recorder.completed($0) })
            }
            return Task { try await DrainLoop.run(step, limits: limits) }
        }

        let expected = try await produce(context, rate: rate, seconds: seconds, recorder: recorder, queue: queue)
        let drainDeadline = Clock.monotonic() + 10
        while recorder.completedCount < expected, Clock.monotonic() < drainDeadline {
            await Clock.sleep(seconds: 0.05)
        }
        stopFlag.stop()
        for task in consumers {
            _ = try await task.value
        }
        listener?.close()
        relay?.cancel()
        for loop in loops {
            await loop.connection.close()
        }
        let completed = recorder.completedCount
        guard completed == expected || !requireAll else {
            throw BenchError.failed("latency: \(completed) of \(expected) runs completed within 10 s")
        }
        let percentiles = recorder.percentiles()
        return (percentiles.start, percentiles.completion, completed, expected)
    }

    /// Enqueues at `rate` while an in-process SDK `Worker` with 100 slots runs the task, and
    /// returns the enqueue-to-start percentiles. The SDK reports completions on its own, so only
    /// the start is measured.
    private static func measureSDK(_ context: ScenarioContext, rate: Double, seconds: Double) async throws -> Percentiles {
        try await context.database.reset()
        let recorder = LatencyRecorder()
        let client = try await SluiceClient(connection: context.database.connectionString)
        let worker = SDKWorker.worker(client: client, slots: 100, task: SDKWorker.task { recorder.started($0) })
        let running = Task { try await worker.run() }
        // Registration and LISTEN take a few milliseconds; the first run must not wait for them.
        await Clock.sleep(seconds: 0.5)
        let expected = try await produce(context, rate: rate, seconds: seconds, recorder: recorder)
        let deadline = Clock.monotonic() + 10
        while recorder.startedCount < expected, Clock.monotonic() < deadline {
            await Clock.sleep(seconds: 0.05)
        }
        worker.shutdown()
        try await running.value
        await client.close()
        guard recorder.startedCount == expected else {
            throw BenchError.failed("latency: the SDK worker started \(recorder.startedCount) of \(expected) runs within 10 s")
        }
        return recorder.percentiles().start
    }

    /// Runs the producer and returns the number of runs it enqueued.
    private static func produce(
        _ context: ScenarioContext, rate: Double, seconds: Double, recorder: LatencyRecorder,
        queue: Queue = .sluice
    ) async throws -> Int {
        try await context.database.withConnection("producer") { connection in
            let started = Clock.monotonic()
            let total = Int(rate * seconds)
            var sent = 0
            while sent < total {
                let due = rate <= 200 ? sent + 1 : min(total, Int(rate * (Clock.monotonic() - started)))
                let dueAt = started + Double(sent) / rate
                if rate <= 200 {
                    await Clock.sleep(seconds: dueAt - Clock.monotonic())
                } else if due <= sent {
                    await Clock.sleep(seconds: 0.01)
                    continue
                }
                let enqueuedAt = Clock.monotonic()
                for seq in sent..<due {
                    recorder.enqueued(seq, at: enqueuedAt)
                }
                if queue == .floor {
                    _ = try await connection.queryCached(floorEnqueueSQL, [BenchInput.inputs(sent..<due)[0]])
                } else if due - sent == 1 {
                    _ = try await connection.queryCached(
                        "SELECT sluice.enqueue($1, $2)", [BenchDatabase.taskName, BenchInput.inputs(sent..<due)[0]])
                } else {
                    _ = try await connection.queryCached(
                        "SELECT cardinality(sluice.enqueue_many($1, $2::jsonb[]))",
                        [BenchDatabase.taskName, BenchInput.inputs(sent..<due)])
                }
                sent = due
            }
            return sent
        }
    }
}

/// Enqueue, start and completion times by sequence number, on the monotonic clock.
final class LatencyRecorder: @unchecked Sendable {
    // @unchecked: every property is guarded by `lock`.

    private let lock = NSLock()
    private var enqueuedAt: [Int: Double] = [:]
    private var startLatencies: [Double] = []
    private var completionLatencies: [Double] = []

    func enqueued(_ seq: Int, at time: Double) {
        lock.withLock { enqueuedAt[seq] = time }
    }

    func started(_ seq: Int) {
        let now = Clock.monotonic()
        lock.withLock {
            if let enqueued = enqueuedAt[seq] {
                startLatencies.append(now - enqueued)
            }
        }
    }

    func completed(_ seqs: [Int]) {
        let now = Clock.monotonic()
        lock.withLock {
            for seq in seqs {
                if let enqueued = enqueuedAt[seq] {
                    completionLatencies.append(now - enqueued)
                }
            }
        }
    }

    var startedCount: Int {
        lock.withLock { startLatencies.count }
    }

    var completedCount: Int {
        lock.withLock { completionLatencies.count }
    }

    func percentiles() -> (start: Percentiles, completion: Percentiles) {
        lock.withLock { (Percentiles(seconds: startLatencies), Percentiles(seconds: completionLatencies)) }
    }
}
