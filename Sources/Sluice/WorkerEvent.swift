import Foundation

/// Everything that happens to a running worker, delivered to its event loop in order.
enum WorkerEvent: Sendable {
    case registered
    case notified(queue: String)
    case cancelNotified(runID: Int64)
    case listenerReconnected
    case pollTimerFired
    case heartbeatDue
    /// The reply to an exchange: the number of reports the database recorded, those to send
    /// again, and the claim's result (nil when it had no claim). `invocations` has the handler
    /// call of each claimed run, by run id, with its input decoded.
    case exchanged(
        lane: Int, recorded: Int, unsent: [WorkerState.Report], claim: WorkerState.ClaimResult?,
        invocations: [Int64: TaskExecutor.Invocation] = [:])
    case finished(runID: Int64, attempt: Int, outcome: WorkerState.Outcome)
    /// Handlers finished and their attempts wait in the runtime's `FinishedAttempts`. The
    /// runtime applies a `finished` event for each, and the state ignores this one.
    case attemptsFinished
    case reportRetryDue
    case flushDue
    case heartbeatSucceeded(lostRunIDs: [Int64])
    case heartbeatFailed
    /// The database stopped this incarnation (SL005).
    case workerExpired(UUID)
    case deadlinePassed(runID: Int64, attempt: Int)
    case drainRequested
    case drainTimedOut
}

extension WorkerEvent {
    /// Returns the reply to `exchange` when none of it reached the database: every report is
    /// sent again later, and its claim, if any, failed.
    static func exchangeFailed(_ exchange: WorkerState.Exchange) -> WorkerEvent {
        .exchanged(lane: exchange.lane, recorded: 0, unsent: exchange.reports, claim: exchange.claim.map { _ in .failed })
    }

    /// Whether an exchange reached the database, for the backoff between report retries: true
    /// when it recorded the reports or the claim succeeded, false when reports must be sent
    /// again. Nil for an exchange with no report whose claim failed (perhaps with the
    /// connection) and for any other event.
    var reportsArrived: Bool? {
        guard case .exchanged(_, let recorded, let unsent, let claim, _) = self else {
            return nil
        }
        if !unsent.isEmpty {
            return false
        }
        if recorded > 0 || claim != .failed {
            return true
        }
        return nil
    }
}

extension WorkerState {
    /// Applies one event and returns the actions it causes.
    mutating func apply(_ event: WorkerEvent) -> [Action] {
        switch event {
        case .registered: registered()
        case .notified(let queue): notified(queue: queue)
        case .cancelNotified(let runID): cancelNotified(runID: runID)
        case .listenerReconnected: listenerReconnected()
        case .pollTimerFired: pollTimerFired()
        case .heartbeatDue: heartbeatDue()
        case .exchanged(let lane, _, let unsent, let claim, _): exchanged(lane: lane, unsent: unsent, claim: claim)
        case .finished(let runID, let attempt, let outcome): finished(runID: runID, attempt: attempt, outcome: outcome)
        case .attemptsFinished: []
        case .reportRetryDue: reportRetryDue()
        case .flushDue: flushDue()
        case .heartbeatSucceeded(let lost): heartbeatSucceeded(lostRunIDs: lost)
        case .heartbeatFailed: heartbeatFailed()
        case .workerExpired: workerExpired()
        case .deadlinePassed(let runID, let attempt): deadlinePassed(runID: runID, attempt: attempt)
        case .drainRequested: drainRequested()
        case .drainTimedOut: drainTimedOut()
        }
    }
}
