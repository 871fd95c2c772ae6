import Foundation
import SluicePostgres

/// One claim-run-report cycle on one connection; `step()` returns how many runs it finished,
/// zero when the queue was empty.
protocol DrainStep: Sendable {
    /// Claims up to a batch, runs the no-op handler on each run and reports the batch.
    func step() async throws -> Int
    /// Reports runs still held after the last step (pipelined loops hold one batch).
    func flush() async throws -> Int
}

/// When a drain loop stops.
struct DrainLimits: Sendable {
    /// Stop at this monotonic time.
    var deadline: Double
    /// Stop when a claim finds nothing; otherwise wait for `idleWait` and claim again.
    var stopWhenEmpty: Bool
    /// Set from outside to stop the loop after its current step.
    var stopFlag: StopFlag? = nil
    /// Wakes an idle loop early; nil polls every `idlePollSeconds`.
    var wakeSignal: WakeSignal? = nil
    var idlePollSeconds = 0.05
    /// Counts finished runs across loops; with a limit, loops stop once it is reached.
    var counter: RunCounter? = nil
}

/// A count of finished runs shared by drain loops, with an optional limit; guarded by a lock.
final class RunCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    let limit: Int?

    init(limit: Int? = nil) {
        self.limit = limit
    }

    var value: Int {
        lock.withLock { count }
    }

    /// Adds `runs` and returns whether the limit is reached.
    func add(_ runs: Int) -> Bool {
        lock.withLock {
            count += runs
            return limit.map { count >= $0 } ?? false
        }
    }
}

/// Counts of one drain loop.
struct DrainStats: Sendable {
    var completed = 0
    /// Wall-clock time of the last completed step, for throughput across processes.
    var lastCompletionWall = 0.0
    /// Duration of every step that finished runs, in seconds.
    var stepSeconds: [Double] = []

    mutating func merge(_ other: DrainStats) {
        completed += other.completed
        lastCompletionWall = max(lastCompletionWall, other.lastCompletionWall)
        stepSeconds += other.stepSeconds
    }
}

/// A flag shared between tasks; reads and writes are guarded by a lock.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false

    var isStopped: Bool {
        lock.withLock { stopped }
    }

    func stop() {
        lock.withLock { stopped = true }
    }
}

/// Wakes waiting loops when runs become ready (from a LISTEN on sluice_ready). A generation
/// count closes the gap between an empty claim and the wait: a loop waits only when no signal
/// came after the claim started.
actor WakeSignal {
    private var generation = 0
    private var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiterID = 0

    func current() -> Int {
        generation
    }

    func signal() {
        generation += 1
        let waiting = waiters
        waiters = [:]
        for continuation in waiting.values {
            continuation.resume()
        }
    }

    /// Waits for a signal after generation `seen`, or at most `timeout` seconds.
    func wait(after seen: Int, timeout: Double) async {
        guard generation == seen else { return }
        let id = nextWaiterID
        nextWaiterID += 1
        let timer = Task {
            await Clock.sleep(seconds: timeout)
            self.resume(id)
        }
        await withCheckedContinuation { continuation in
            waiters[id] = continuation
        }
        timer.cancel()
    }

    private func resume(_ id: Int) {
        waiters.removeValue(forKey: id)?.resume()
    }
}

enum DrainLoop {
    /// Runs `step` until the limits say stop, then flushes, and returns the counts.
    static func run(_ step: DrainStep, limits: DrainLimits) async throws -> DrainStats {
        var stats = DrainStats()
        while Clock.monotonic() < limits.deadline, !(limits.stopFlag?.isStopped ?? false) {
            let seen = await limits.wakeSignal?.current() ?? 0
            let started = Clock.monotonic()
            let finished = try await step.step()
            if finished > 0 {
                stats.completed += finished
                stats.lastCompletionWall = Clock.wall()
                stats.stepSeconds.append(Clock.monotonic() - started)
                if limits.counter?.add(finished) == true {
                    break
                }
                continue
            }
            if limits.stopWhenEmpty {
                break
            }
            if let signal = limits.wakeSignal {
                await signal.wait(after: seen, timeout: limits.idlePollSeconds)
            } else {
                await Clock.sleep(seconds: limits.idlePollSeconds)
            }
        }
        let flushed = try await step.flush()
        if flushed > 0 {
            stats.completed += flushed
            stats.lastCompletionWall = Clock.wall()
        }
        return stats
    }
}
