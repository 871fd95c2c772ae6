import Foundation

/// The decisions of a `Worker`, as a value with no I/O: each method takes an event and returns
/// the actions the worker performs next.
///
/// Reports and claims travel in exchanges: one pipeline on one of the worker's `lanes`
/// (connections), the reports first, then the claim. A lane carries one exchange at a time, so
/// with two lanes the database works on two exchanges at once. Claims are requested when there
/// may be ready work (start, a notification for one of the worker's queues, a listener
/// reconnect, the poll timer, or a full previous claim) and a slot is free. Reports are
/// batched: a finished attempt goes with the next exchange, after a short wait for handlers
/// finishing at the same moment.
///
/// A claim requests only slots the database has already freed: not slots whose reports are
/// still in flight on another lane, nor slots that another claim in flight requested. So a
/// claim that returns fewer runs than it requested means that no more were claimable: the
/// queues were empty, or the rest were gated, locked by other claims or routed elsewhere.
///
/// A worker with nothing to do keeps one claim waiting in the server (`sluice.claim_or_wait`)
/// when `waitsInServer` is set: with no handler executing, no report pending and no exchange in
/// flight, after a claim that found no more work. It returns when runs become ready or after
/// its timeout, and the next one follows while the worker is still idle.
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

    /// One pipeline on one lane: the reports, then the claim.
    struct Exchange: Sendable, Hashable {
        /// The lane that carries it, from 0 to `lanes - 1`.
        var lane: Int
        /// The outcomes to record, in `complete` and `fail` batches.
        var reports: [Report]
        /// The number of runs to claim after the reports, or nil for no claim.
        var claim: Int?
        /// Whether the claim waits in the server for runs when none is ready.
        var waits = false
    }

    /// The result of an exchange's claim.
    enum ClaimResult: Sendable, Hashable {
        case claimed([ClaimedRun])
        case failed
    }

    /// An action the worker performs next.
    enum Action: Sendable, Hashable {
        /// Register a new incarnation with `sluice.register_worker`.
        case register
        /// Send this exchange on its lane.
        case send(Exchange)
        /// Start the handler of a claimed run.
        case start(ClaimedRun)
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
    /// The number of connections that carry exchanges.
    let lanes: Int
    /// Whether an idle worker keeps a claim waiting in the server.
    let waitsInServer: Bool

    private(set) var phase = Phase.registering
    private var executions: [Int64: Execution] = [:]
    /// Finished attempts whose reports wait for the next exchange.
    private var pendingReports: [Report] = []
    /// The exchanges in flight, by lane.
    private var exchanges: [Int: Exchange] = [:]
    private var isHeartbeatInFlight = false
    /// Whether a `.scheduleFlush` is pending, so further finished attempts wait for it.
    private var isFlushScheduled = false
    /// Whether ready runs may be waiting: set by notifications, timers and full claims.
    private var mayHaveReadyRuns = true

    init(slots: Int, queues: Set<String>, lanes: Int = 1, waitsInServer: Bool = false) {
        precondition(slots > 0, "a worker has at least one slot")
        precondition(lanes > 0, "a worker has at least one lane")
        self.slots = slots
        self.queues = queues
        self.lanes = lanes
        self.waitsInServer = waitsInServer
    }

    /// The number of handlers executing, including cancelled ones that have not returned yet.
    var executingCount: Int { executions.count }

    /// The ids of the runs whose handlers are executing, in ascending order.
    var executingRunIDs: [Int64] { executions.keys.sorted() }

    /// The slots a claim sent now may request: free in the worker, with their reports recorded
    /// or travelling ahead of the claim. An exchange in flight occupies the slots of its
    /// reports until the database records them, and then the slots its claim requested, which
    /// include those. So the larger of the two counts is not claimable elsewhere.
    private var claimableSlots: Int {
        var reserved = 0
        for exchange in exchanges.values {
            reserved += max(exchange.reports.count, exchange.claim ?? 0)
        }
        return slots - executions.count - reserved
    }

    /// The maximum a claim requests: a lane's share of the slots.
    private var laneShare: Int {
        (slots + lanes - 1) / lanes
    }

    private var idleLane: Int? {
        (0..<lanes).first { exchanges[$0] == nil }
    }

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

    /// Applies the reply of the exchange on `lane`. `unsent` are its reports that did not reach
    /// the database, which wait for `reportRetryDue()`. `claim` is nil when it had no claim.
    mutating func exchanged(lane: Int, unsent: [Report], claim: ClaimResult?) -> [Action] {
        guard let exchange = exchanges.removeValue(forKey: lane) else {
            return []
        }
        pendingReports = unsent + pendingReports
        var actions: [Action] = []
        switch claim {
        case .claimed(let runs):
            for run in runs {
                executions[run.runID] = Execution(attempt: run.attempt)
                actions.append(.start(run))
            }
            if runs.count >= exchange.claim ?? 0 {
                mayHaveReadyRuns = true
            }
        case .failed:
            // The poll timer tries again.
            mayHaveReadyRuns = true
        case nil:
            break
        }
        if !unsent.isEmpty {
            return actions + stopIfDrained()
        }
        if claim == .failed {
            // The reports that waited still go. The claim waits for a later event, such as the
            // poll timer.
            return actions + flushAndClaim(claiming: false) + stopIfDrained()
        }
        return actions + flushSoon() + waitIfIdle() + stopIfDrained()
    }

    /// Sends a claim that waits in the server when the worker has nothing to do and its last
    /// claim found no more work.
    private mutating func waitIfIdle() -> [Action] {
        guard waitsInServer, phase == .running, !mayHaveReadyRuns, executions.isEmpty, pendingReports.isEmpty,
              exchanges.isEmpty, let lane = idleLane
        else {
            return []
        }
        let exchange = Exchange(lane: lane, reports: [], claim: min(claimableSlots, laneShare), waits: true)
        exchanges[lane] = exchange
        return [.send(exchange)]
    }

    /// Sends what is pending now, or after `coalescingDelay` while handlers still execute and
    /// reports wait: short handlers may finish a moment later, and their reports and the claim
    /// for their slots then travel in one exchange instead of one each.
    private mutating func flushSoon() -> [Action] {
        guard phase == .running, !executions.isEmpty, !pendingReports.isEmpty, idleLane != nil else {
            return flushAndClaim()
        }
        guard !isFlushScheduled else {
            return []
        }
        isFlushScheduled = true
        return [.scheduleFlush]
    }

    /// Sends the pending reports and, if `claiming` and `claimIfPossible` allow, a claim on each
    /// idle lane while there is something to send. The pending reports go in the first exchange.
    private mutating func flushAndClaim(claiming: Bool = true) -> [Action] {
        var actions: [Action] = []
        while let lane = idleLane {
            let claim = claiming ? claimIfPossible() : nil
            guard claim != nil || !pendingReports.isEmpty else {
                break
            }
            let exchange = Exchange(lane: lane, reports: pendingReports, claim: claim)
            pendingReports.removeAll()
            exchanges[lane] = exchange
            actions.append(.send(exchange))
        }
        return actions
    }

    /// Returns the number of runs to claim now, if any. A claim requests at most a lane's share
    /// of the slots, so that with two lanes two claims of half the slots each are in flight at
    /// once. One that requests fewer than the claimable slots leaves `mayHaveReadyRuns` set, so
    /// that the next lane claims the rest.
    private mutating func claimIfPossible() -> Int? {
        let claimable = claimableSlots
        guard phase == .running, mayHaveReadyRuns, claimable > 0 else {
            return nil
        }
        let count = min(claimable, laneShare)
        mayHaveReadyRuns = count < claimable
        return count
    }

    // MARK: Attempts and reports

    /// The handler of `runID` returned or threw. Ignored unless it is the attempt being executed.
    mutating func finished(runID: Int64, attempt: Int, outcome: Outcome) -> [Action] {
        guard executions[runID]?.attempt == attempt else {
            return []
        }
        executions.removeValue(forKey: runID)
        pendingReports.append(Report(runID: runID, attempt: attempt, outcome: outcome))
        return flushSoon() + stopIfDrained()
    }

    /// The coalescing delay after a finished attempt passed: send what waited.
    mutating func flushDue() -> [Action] {
        isFlushScheduled = false
        return flushAndClaim() + stopIfDrained()
    }

    /// The backoff after a failed report passed: send the pending reports again.
    mutating func reportRetryDue() -> [Action] {
        flushAndClaim() + stopIfDrained()
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
        guard phase == .draining, executions.isEmpty, pendingReports.isEmpty, exchanges.isEmpty else {
            return []
        }
        phase = .stopped
        return [.stop]
    }
}
