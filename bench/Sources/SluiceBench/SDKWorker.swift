import Foundation
import Sluice

/// The benchmark task declared through the SDK, for workers built on `Sluice.Worker`.
///
/// It has the name of the task the SQL-protocol scenarios use, so the runs they enqueue are
/// the same rows. The SDK redefines the task at worker start with one attempt and a one-hour
/// timeout, the options the benchmark defines it with.
enum SDKWorker {
    /// Declares the no-op task. Its handler first calls `onStart` with the run's sequence number.
    static func task(
        sleepNanoseconds: UInt64 = 0, onStart: (@Sendable (Int) -> Void)? = nil
    ) -> TaskDefinition<BenchInput, Empty> {
        let handler: @Sendable (BenchInput, TaskContext) async throws -> Void = { input, _ in
            onStart?(input.seq)
            if sleepNanoseconds > 0 {
                try await Task.sleep(nanoseconds: sleepNanoseconds)
            }
        }
        return Sluice.task(BenchDatabase.taskName, retries: .none, timeout: .seconds(3600), handler: handler)
    }

    /// Creates a worker with `slots` for the task, without signal handlers, so the benchmark
    /// stops it with `shutdown()`.
    static func worker(client: SluiceClient, slots: Int, task: TaskDefinition<BenchInput, Empty>) -> Worker {
        Worker(client: client, name: "bench-sdk-\(getpid())", slots: slots, tasks: [task], handleSignals: false)
    }
}

/// A count shared by handlers; guarded by a lock.
final class HandlerCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    var value: Int {
        lock.withLock { count }
    }

    /// Adds one and returns the new count.
    func increment() -> Int {
        lock.withLock {
            count += 1
            return count
        }
    }
}

extension WorkerProcess {
    /// Runs an SDK worker from `go` until `stop`, the end of input or `seconds`, and reports the
    /// number of handlers that ran.
    static func runSDKThroughputMode(_ arguments: Arguments) async throws {
        let client = try await SluiceClient(connection: arguments.database)
        let counter = HandlerCounter()
        let worker = SDKWorker.worker(
            client: client, slots: arguments.slots, task: SDKWorker.task { _ in _ = counter.increment() })
        say("ready")
        guard readLine() == "go" else {
            throw BenchError.failed("expected \"go\" on standard input")
        }
        Thread.detachNewThread {
            _ = readLine()
            worker.shutdown()
        }
        let deadline = Task {
            await Clock.sleep(seconds: arguments.seconds)
            worker.shutdown()
        }
        try await worker.run()
        deadline.cancel()
        await client.close()
        let result = Result(completed: counter.value, lastCompletionWall: Clock.wall(), stepSeconds: [])
        say("result " + String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }

    /// Runs an SDK worker with `memoryRuns` slots whose handlers sleep, prints `inflight` once
    /// every slot runs a handler, and stops after they have all finished.
    static func runSDKMemoryMode(_ arguments: Arguments) async throws {
        let client = try await SluiceClient(connection: arguments.database)
        let started = HandlerCounter()
        let runs = arguments.memoryRuns
        let task = SDKWorker.task(sleepNanoseconds: UInt64(arguments.sleepMilliseconds) * 1_000_000) { _ in
            if started.increment() == runs {
                say("inflight")
            }
        }
        let worker = SDKWorker.worker(client: client, slots: runs, task: task)
        let running = Task { try await worker.run() }
        // Registration takes a few milliseconds; "idle" follows once the worker is waiting.
        await Clock.sleep(seconds: 0.5)
        say("idle")
        while started.value < runs {
            await Clock.sleep(seconds: 0.05)
        }
        await Clock.sleep(seconds: Double(arguments.sleepMilliseconds) / 1000)
        worker.shutdown()
        try await running.value
        await client.close()
        let result = Result(completed: started.value, lastCompletionWall: Clock.wall(), stepSeconds: [])
        say("result " + String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }
}
