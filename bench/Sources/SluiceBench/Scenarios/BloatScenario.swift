import Foundation
import SluicePostgres

/// Steady load while another session holds a REPEATABLE READ snapshot open, which keeps
/// vacuum from removing the rows that claims delete: throughput and dead rows of the hot tables
/// before, during and after.
///
/// The load is a producer in this process (enqueue_many of 100, pausing above 5,000 waiting
/// runs) and two claim loops of batch 50, so throughput is what the consumers reach.
enum BloatScenario {
    static func run(_ context: ScenarioContext) async throws {
        let report = context.report
        let (normalSeconds, heldSeconds, afterSeconds, interval) =
            context.quick ? (1.0, 1.5, 1.5, 0.5) : (30.0, 120.0, 60.0, 5.0)
        try await context.database.reset()

        let stopFlag = StopFlag()
        let counter = RunCounter()
        let producer = Task {
            try await EndToEndScenario.produce(context, until: stopFlag, backlogLimit: 5_000, batchSize: 100)
        }
        var connections: [PostgresConnection] = []
        for index in 0..<2 {
            connections.append(try await context.database.connect("bloat \(index)"))
        }
        // One worker per loop: claims of one worker id take turns.
        var workerIDs: [UUID] = []
        for (index, connection) in connections.enumerated() {
            workerIDs.append(try await BenchDatabase.registerWorker(connection, name: "bench-bloat-\(index)", slots: 50))
        }
        let limits = DrainLimits(
            deadline: .infinity, stopWhenEmpty: false, stopFlag: stopFlag, idlePollSeconds: 0.005, counter: counter)
        let consumers = zip(connections, workerIDs).map { connection, workerID in
            let step = SluiceStep(connection: connection, workerID: workerID, batchSize: 50)
            return Task { try await DrainLoop.run(step, limits: limits) }
        }

        var sampler = Sampler(context: context, counter: counter, interval: interval)
        let normal = try await sampler.run(phase: "normal", seconds: normalSeconds)
        let holder = try await context.database.connect("snapshot holder")
        try await holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        _ = try await holder.query("SELECT count(*) FROM sluice.tasks")
        let during = try await sampler.run(phase: "snapshot held", seconds: heldSeconds)
        try await holder.execute("ROLLBACK")
        await holder.close()
        let after = try await sampler.run(phase: "after release", seconds: afterSeconds)

        stopFlag.stop()
        for task in consumers {
            _ = try await task.value
        }
        _ = try await producer.value
        for connection in connections {
            await connection.close()
        }

        let normalRate = normal.map(\.rate).reduce(0, +) / Double(max(normal.count, 1))
        let duringRate = during.map(\.rate).reduce(0, +) / Double(max(during.count, 1))
        report.add(.bloat, "throughput before the snapshot", normalRate, "runs/s")
        report.add(.bloat, "throughput while the snapshot is held", duringRate, "runs/s")
        report.add(.bloat, "throughput in the last interval while held", during.last?.rate ?? 0, "runs/s")
        for sample in after {
            report.add(.bloat, String(format: "throughput %.0f s after release", sample.secondsIntoPhase), sample.rate,
                       "runs/s", note: "dead rows: ready \(sample.deadReady), leases \(sample.deadLeases)")
        }
        report.add(.bloat, "peak dead rows in sluice.ready", Double((normal + during + after).map(\.deadReady).max() ?? 0),
                   "rows")
        report.add(.bloat, "peak dead rows in sluice.leases", Double((normal + during + after).map(\.deadLeases).max() ?? 0),
                   "rows")
        report.checkRatio("throughput while a snapshot is held vs before", measured: duringRate,
                          reference: normalRate, minimum: 0.5)
        let recovered = after.first { $0.rate >= 0.9 * normalRate }
        report.check(
            "back to 90% of normal throughput after release",
            measured: recovered.map { String(format: "after %.0f s", $0.secondsIntoPhase) } ?? "not within the phase",
            target: "within 60 s", met: (recovered?.secondsIntoPhase ?? .infinity) <= 60)
    }

    struct Sample {
        var phase: String
        var secondsIntoPhase: Double
        var rate: Double
        var deadReady: Int
        var deadLeases: Int
        var deadRuns: Int
    }

    /// Reads the completion counter and the dead-row counts every `interval` seconds.
    struct Sampler {
        let context: ScenarioContext
        let counter: RunCounter
        let interval: Double

        mutating func run(phase: String, seconds: Double) async throws -> [Sample] {
            var samples: [Sample] = []
            let phaseStart = Clock.monotonic()
            var previousCount = counter.value
            var previousTime = phaseStart
            while Clock.monotonic() - phaseStart < seconds - 1e-3 {
                await Clock.sleep(seconds: min(interval, seconds - (Clock.monotonic() - phaseStart)))
                let now = Clock.monotonic()
                let count = counter.value
                let tuples = try await context.tupleCounts()
                let sample = Sample(
                    phase: phase, secondsIntoPhase: now - phaseStart,
                    rate: Double(count - previousCount) / (now - previousTime),
                    deadReady: tuples["ready"]?.dead ?? 0, deadLeases: tuples["leases"]?.dead ?? 0,
                    deadRuns: tuples["runs_p0"]?.dead ?? 0)
                printLine(String(format: "    %@ %5.0f s: %8.0f runs/s, dead rows ready %d, leases %d, runs %d",
                             phase as NSString, sample.secondsIntoPhase, sample.rate, sample.deadReady,
                             sample.deadLeases, sample.deadRuns))
                samples.append(sample)
                previousCount = count
                previousTime = now
            }
            return samples
        }
    }
}
