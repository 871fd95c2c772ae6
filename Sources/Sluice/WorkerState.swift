import Foundation

/// The decisions of a `Worker`, as a value with no I/O: each method takes an event and returns
/// the actions the worker performs next.
///
/// Claims are requested when there may be ready work (start, a notification for one of the
/// worker's queues, a listener reconnect, the poll timer, or a full previous claim) and a slot
/// is free, never more than one at a time. Reports are batched: a finished attempt is sent at
/// once when no report is in flight, otherwise it waits and goes with the next batch. A claim
/// never overtakes a report, so the database has freed the slots the claim asks for.
struct WorkerState: Sendable {
    /// The lifecycle of the worker.
    enum Phase: Sendable, Hashable {
        /// Waiting for `register_worker`, at start or after the incarnation was stopped.
        case registering
        /// Claiming and executing runs.
        case running
        /// Executing the runs it holds without claiming more, then stopping.
        case draining
        /// Stopped; no further actions.
        case stopped
    }

    /// A run returned by `sluice.claim`.
    struct ClaimedRun: Sendable, Hashable {
        var runID: Int64
        var task: String
        var attempt: Int
        var maxAttempts: Int
        var input: String
        var metadata: String
        /// The execution deadline by the database clock.
        var deadline: Date
        /// The time left until `deadline` when the claim returned, by the database clock.
        var timeLeft: Duration
    }

    /// The result of an attempt.
    enum Outcome: Sendable, Hashable {
        /// The handler returned this output, as JSON text.
        case succeeded(output: String)
        /// The handler threw; `retryable` is false for a `NonRetryableError`.
        case failed(message: String, retryable: Bool)
    }

    /// The outcome of one attempt, to send with `sluice.complete` or `sluice.fail`.
    struct Report: Sendable, Hashable {
        var runID: Int64
        var attempt: Int
        var outcome: Outcome
    }

    /// An action the worker performs next.
    enum Action: Sendable, Hashable {
        /// Register a new incarnation with `sluice.register_worker`.
        case register
        /// Claim up to this many runs.
        case claim(Int)
        /// Start the handler of a claimed run.
        case start(ClaimedRun)
        /// Send these reports in one batch.
        case report([Report])
        /// Report `flushDue()` after `WorkerState.coalescingDelay`.
        case scheduleFlush
        /// Send a heartbeat listing the runs the worker holds.
        case heartbeat([Int64])
        /// Cancel the handler of a run.
        case cancel(runID: Int64, reason: CancellationReason)
        /// Start the drain timeout.
        case startDrainTimer
        /// Stop the incarnation with `sluice.stop_worker` and return from `run()`.
        case stop
    }

    /// An attempt whose handler is executing.
    private struct Execution: Sendable, Hashable {
        var attempt: Int
        var cancelReason: CancellationReason?
    }

    /// How long a finished attempt's report waits for other handlers that may finish at the
    /// same moment, while some still execute: 1 ms.
    static let coalescingDelay = Duration.milliseconds(1)

    /// The number of handlers that may execute at once.
    let slots: Int
    /// The queues whose notifications trigger a claim.
    let queues: Set<String>

    private(set) var phase = Phase.registering
    private var executions: [Int64: Execution] = [:]
    private var pendingReports: [Report] = []
    private var isReportInFlight = false
    private var isClaimInFlight = false
    private var isHeartbeatInFlight = false
    /// Whether a `.scheduleFlush` is pending, so further finished attempts wait for it.
    private var isFlushScheduled = false
    /// Whether ready runs may be waiting: set by notifications, timers and full claims.
    private var mayHaveReadyRuns = true

    init(slots: Int, queues: Set<String>) {
        precondition(slots > 0, "a worker has at least one slot")
        self.slots = slots
        self.queues = queues
    }

    /// The number of handlers executing, including cancelled ones that have not returned yet.
    var executingCount: Int { executions.count }

    /// The ids of the runs whose handlers are executing, in ascending order.
    var executingRunIDs: [Int64] { executions.keys.sorted() }

    private var freeSlots: Int { slots - executions.count }

    // MARK: Registration and claims

    /// The incarnation was registered: claim.
    mutating func registered() -> [Action] {
        guard phase == .registering else {
            return []
        }
        phase = .running
        mayHaveReadyRuns = true
        return flushAndClaim()
    }

    /// A `sluice_ready` notification arrived for `queue`.
    mutating func notified(queue: String) -> [Action] {
        guard queues.contains(queue) else {
            return []
        }
        mayHaveReadyRuns = true
        return flushAndClaim()
    }

    /// The listener reconnected, so notifications may have been lost.
    mutating func listenerReconnected() -> [Action] {
        mayHaveReadyRuns = true
        return flushAndClaim()
    }

    /// The fallback poll timer fired.
    mutating func pollTimerFired() -> [Action] {
        mayHaveReadyRuns = true
        return flushAndClaim()
    }

    /// A claim of up to `requested` runs returned `runs`.
    mutating func claimed(_ runs: [ClaimedRun], requested: Int) -> [Action] {
        isClaimInFlight = false
        var actions: [Action] = []
        for run in runs {
            executions[run.runID] = Execution(attempt: run.attempt)
            actions.append(.start(run))
        }
        if runs.count >= requested {
            mayHaveReadyRuns = true
        }
        return actions + flushAndClaim() + stopIfDrained()
    }

    /// A claim failed; the poll timer tries again.
    mutating func claimFailed() -> [Action] {
        isClaimInFlight = false
        mayHaveReadyRuns = true
        return stopIfDrained()
    }

    /// Sends the pending reports when none is in flight, then claims if `claimIfPossible` allows.
    /// A claim never overtakes a report: the database counts a finished run against the worker's
    /// slots until its report arrives, so a claim sent first would get fewer runs than the worker
    /// has room for. A claim emitted with a report batch goes in the same pipeline, after it. While
    /// an earlier batch is in flight, the claim waits for `reported()`.
    private mutating func flushAndClaim() -> [Action] {
        let reports = flushIfIdle()
        if reports.isEmpty && isReportInFlight {
            return []
        }
        return reports + claimIfPossible()
    }

    private mutating func claimIfPossible() -> [Action] {
        guard phase == .running, mayHaveReadyRuns, !isClaimInFlight, freeSlots > 0 else {
            return []
        }
        isClaimInFlight = true
        mayHaveReadyRuns = false
        return [.claim(freeSlots)]
    }

    // MARK: Attempts and reports

    /// The handler of `runID` returned or threw. Ignored unless it is the attempt being executed.
    mutating func finished(runID: Int64, attempt: Int, outcome: Outcome) -> [Action] {
        guard executions[runID]?.attempt == attempt else {
            return []
        }
        executions.removeValue(forKey: runID)
        pendingReports.append(Report(runID: runID, attempt: attempt, outcome: outcome))
        // While other handlers still execute, short ones may finish a moment later: waiting
        // `coalescingDelay` lets their reports, and the claim for their slots, travel in one
        // round trip instead of one each.
        if phase == .running, !executions.isEmpty, !isReportInFlight, !isFlushScheduled {
            isFlushScheduled = true
            return [.scheduleFlush]
        }
        if isFlushScheduled, !executions.isEmpty {
            return stopIfDrained()
        }
        return flushAndClaim() + stopIfDrained()
    }

    /// The coalescing delay after a finished attempt passed: send what waited.
    mutating func flushDue() -> [Action] {
        isFlushScheduled = false
        return flushAndClaim() + stopIfDrained()
    }

    /// The report batch in flight was sent.
    mutating func reported() -> [Action] {
        isReportInFlight = false
        return flushAndClaim() + stopIfDrained()
    }

    /// Sending `batch` failed on the connection; it is sent again with the next flush.
    mutating func reportFailed(_ batch: [Report]) -> [Action] {
        isReportInFlight = false
        pendingReports = batch + pendingReports
        return []
    }

    /// The backoff after a failed report passed: send the pending reports again.
    mutating func reportRetryDue() -> [Action] {
        flushAndClaim() + stopIfDrained()
    }

    private mutating func flushIfIdle() -> [Action] {
        guard !isReportInFlight, !pendingReports.isEmpty else {
            return []
        }
        isReportInFlight = true
        let batch = pendingReports
        pendingReports.removeAll()
        return [.report(batch)]
    }

    // MARK: Heartbeats and cancellation

    /// The heartbeat interval passed.
    mutating func heartbeatDue() -> [Action] {
        guard phase != .stopped, phase != .registering, !isHeartbeatInFlight else {
            return []
        }
        isHeartbeatInFlight = true
        return [.heartbeat(executingRunIDs)]
    }

    /// The heartbeat returned the runs the worker no longer holds: cancel their handlers.
    mutating func heartbeatSucceeded(lostRunIDs: [Int64]) -> [Action] {
        isHeartbeatInFlight = false
        return lostRunIDs.flatMap { cancel($0, reason: .leaseLost) }
    }

    /// The heartbeat failed; the next one tries again.
    mutating func heartbeatFailed() -> [Action] {
        isHeartbeatInFlight = false
        return []
    }

    /// A `sluice_cancel` notification arrived for `runID`.
    mutating func cancelNotified(runID: Int64) -> [Action] {
        cancel(runID, reason: .cancelledByUser)
    }

    /// The execution deadline of `attempt` of `runID` passed by the local clock.
    mutating func deadlinePassed(runID: Int64, attempt: Int) -> [Action] {
        guard executions[runID]?.attempt == attempt else {
            return []
        }
        return cancel(runID, reason: .deadlinePassed)
    }

    /// The database reported SL005: the incarnation was stopped (it was silent for longer than
    /// its lease timeout) and its runs were requeued. Cancel every handler and register again.
    mutating func workerExpired() -> [Action] {
        let cancels = executingRunIDs.flatMap { cancel($0, reason: .leaseLost) }
        // Reports for the requeued attempts would be rejected by the attempt check.
        pendingReports.removeAll()
        guard phase == .running else {
            return cancels + stopIfDrained()
        }
        phase = .registering
        return cancels + [.register]
    }

    private mutating func cancel(_ runID: Int64, reason: CancellationReason) -> [Action] {
        guard var execution = executions[runID], execution.cancelReason == nil else {
            return []
        }
        execution.cancelReason = reason
        executions[runID] = execution
        return [.cancel(runID: runID, reason: reason)]
    }

    // MARK: Draining

    /// A shutdown was requested: stop claiming and wait for the handlers. A second request
    /// cancels the handlers at once.
    mutating func drainRequested() -> [Action] {
        switch phase {
        case .stopped:
            return []
        case .draining:
            return drainTimedOut()
        case .registering, .running:
            phase = .draining
            return [.startDrainTimer] + stopIfDrained()
        }
    }

    /// The drain timeout passed: cancel the handlers still executing.
    mutating func drainTimedOut() -> [Action] {
        guard phase == .draining else {
            return []
        }
        return executingRunIDs.flatMap { cancel($0, reason: .workerDraining) }
    }

    private mutating func stopIfDrained() -> [Action] {
        guard phase == .draining, executions.isEmpty, pendingReports.isEmpty, !isReportInFlight,
            !isClaimInFlight
        else {
            return []
        }
        phase = .stopped
        return [.stop]
    }
}
