import Foundation
import Testing

@testable import Sluice

/// WorkerState without I/O: events in, actions out.
@Suite struct WorkerStateTests {
    static func run(_ id: Int64, attempt: Int = 1) -> WorkerState.ClaimedRun {
        WorkerState.ClaimedRun(
            runID: id, task: "t", attempt: attempt, maxAttempts: 3, input: "{}", metadata: "{}",
            deadline: Date(timeIntervalSince1970: 1_700_000_000), timeLeft: .seconds(30))
    }

    static let success = WorkerState.Outcome.succeeded(output: "{}")

    static func report(_ runID: Int64, _ outcome: WorkerState.Outcome = success) -> WorkerState.Report {
        WorkerState.Report(runID: runID, attempt: 1, outcome: outcome)
    }

    static func send(lane: Int = 0, _ reports: [WorkerState.Report] = [], claim: Int? = nil) -> WorkerState.Action {
        .send(WorkerState.Exchange(lane: lane, reports: reports, claim: claim))
    }

    /// Returns a state with `lanes` lanes that registered and received `runs` from its first
    /// claim, on lane 0.
    static func running(slots: Int, lanes: Int = 1, runs: [WorkerState.ClaimedRun]) -> WorkerState {
        var state = WorkerState(slots: slots, queues: ["default"], lanes: lanes)
        _ = state.registered()
        _ = state.exchanged(lane: 0, unsent: [], claim: .claimed(runs))
        return state
    }

    @Test func registeredClaimsAllSlots() {
        var state = WorkerState(slots: 4, queues: ["default"])
        #expect(state.registered() == [Self.send(claim: 4)])
        #expect(state.phase == .running)
    }

    @Test func oneExchangeInFlightPerLane() {
        var state = WorkerState(slots: 4, queues: ["default"])
        _ = state.registered()
        #expect(state.notified(queue: "default") == [])
        #expect(state.pollTimerFired() == [])
        // The notifications that arrived meanwhile make the state claim again after the reply.
        let actions = state.exchanged(lane: 0, unsent: [], claim: .claimed([Self.run(1)]))
        #expect(actions == [.start(Self.run(1)), Self.send(claim: 3)])
    }

    @Test func otherQueueNotificationIgnored() {
        var state = Self.running(slots: 4, runs: [])
        #expect(state.notified(queue: "other") == [])
        #expect(state.notified(queue: "default") == [Self.send(claim: 4)])
    }

    @Test func partialClaimWaitsForNotification() {
        var state = Self.running(slots: 4, runs: [])
        _ = state.notified(queue: "default")
        _ = state.exchanged(lane: 0, unsent: [], claim: .claimed([Self.run(1)]))
        let actions = state.finished(runID: 1, attempt: 1, outcome: Self.success)
        #expect(actions == [Self.send([Self.report(1)])])
    }

    @Test func fullClaimClaimsWhenSlotFrees() {
        var state = Self.running(slots: 2, runs: [Self.run(1), Self.run(2)])
        #expect(state.notified(queue: "default") == [])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        #expect(state.flushDue() == [Self.send([Self.report(1)], claim: 1)])
    }

    @Test func finishesCoalesceIntoOneBatch() {
        var state = Self.running(slots: 3, runs: [Self.run(1), Self.run(2), Self.run(3)])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        #expect(state.finished(runID: 2, attempt: 1, outcome: Self.success) == [])
        #expect(state.flushDue() == [Self.send([Self.report(1), Self.report(2)], claim: 2)])
    }

    @Test func lastFinishFlushesAtOnce() {
        var state = Self.running(slots: 2, runs: [Self.run(1), Self.run(2)])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        // No handler is left to wait for, so the reports go now.
        #expect(
            state.finished(runID: 2, attempt: 1, outcome: Self.success) == [
                Self.send([Self.report(1), Self.report(2)], claim: 2)
            ])
        #expect(state.flushDue() == [])
    }

    @Test func replyWaitsForItsRunsBeforeReporting() {
        var state = Self.running(slots: 10, runs: (1...10).map { Self.run($0) })
        for runID: Int64 in 1...9 {
            _ = state.finished(runID: runID, attempt: 1, outcome: Self.success)
        }
        #expect(state.flushDue() == [Self.send((1...9).map { Self.report($0) }, claim: 9)])
        _ = state.finished(runID: 10, attempt: 1, outcome: Self.success)
        // Run 10's report does not go at once with a claim for its one slot: the nine runs just
        // claimed may finish within the coalescing delay, and all ten reports then go together.
        let claimed = (11...19).map { Self.run($0) }
        #expect(state.exchanged(lane: 0, unsent: [], claim: .claimed(claimed)) == claimed.map { .start($0) } + [.scheduleFlush])
        for runID: Int64 in 11...18 {
            #expect(state.finished(runID: runID, attempt: 1, outcome: Self.success) == [])
        }
        #expect(
            state.finished(runID: 19, attempt: 1, outcome: Self.success) == [
                Self.send((10...19).map { Self.report($0) }, claim: 10)
            ])
    }

    @Test func reportsBatchWhileTheLaneIsBusy() {
        var state = Self.running(slots: 3, runs: [Self.run(1), Self.run(2), Self.run(3)])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        #expect(state.flushDue() == [Self.send([Self.report(1)], claim: 1)])
        let failure = WorkerState.Outcome.failed(message: "boom", retryable: true)
        #expect(state.finished(runID: 2, attempt: 1, outcome: failure) == [])
        #expect(state.finished(runID: 3, attempt: 1, outcome: Self.success) == [])
        #expect(
            state.exchanged(lane: 0, unsent: [], claim: .claimed([])) == [
                Self.send([Self.report(2, failure), Self.report(3)])
            ])
    }

    @Test func claimWaitsForReportInFlight() {
        var state = Self.running(slots: 2, runs: [Self.run(1), Self.run(2)])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        #expect(state.flushDue() == [Self.send([Self.report(1)], claim: 1)])
        #expect(state.exchanged(lane: 0, unsent: [], claim: .claimed([])) == [])
        // The claim found nothing, so run 2's report goes alone.
        #expect(state.finished(runID: 2, attempt: 1, outcome: Self.success) == [Self.send([Self.report(2)])])
        // A claim sent now would find run 2 still holding a slot in the database: it waits for
        // the report and goes on the same lane after it.
        #expect(state.notified(queue: "default") == [])
        #expect(state.exchanged(lane: 0, unsent: [], claim: nil) == [Self.send(claim: 2)])
    }

    @Test func failedReportIsSentAgain() {
        var state = Self.running(slots: 1, runs: [Self.run(1)])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [Self.send([Self.report(1)], claim: 1)])
        #expect(state.exchanged(lane: 0, unsent: [Self.report(1)], claim: .failed) == [])
        #expect(state.reportRetryDue() == [Self.send([Self.report(1)], claim: 1)])
    }

    /// The backoff between report retries restarts when the database recorded reports or a
    /// claim succeeded, not when a claim failed alone, perhaps with the connection.
    @Test func reachedDatabaseRestartsReportBackoff() {
        #expect(WorkerEvent.exchanged(lane: 0, recorded: 0, unsent: [], claim: .claimed([])).reportsArrived == true)
        #expect(WorkerEvent.exchanged(lane: 0, recorded: 1, unsent: [], claim: nil).reportsArrived == true)
        #expect(WorkerEvent.exchanged(lane: 0, recorded: 1, unsent: [], claim: .failed).reportsArrived == true)
        #expect(WorkerEvent.exchanged(lane: 0, recorded: 0, unsent: [Self.report(1)], claim: nil).reportsArrived == false)
        #expect(WorkerEvent.exchangeFailed(WorkerState.Exchange(lane: 0, reports: [], claim: 1)).reportsArrived == nil)
        #expect(WorkerEvent.exchangeFailed(WorkerState.Exchange(lane: 0, reports: [Self.report(1)], claim: 1)).reportsArrived == false)
        #expect(WorkerEvent.pollTimerFired.reportsArrived == nil)
    }

    @Test func failedClaimWaitsForThePollTimer() {
        var state = WorkerState(slots: 2, queues: ["default"])
        _ = state.registered()
        #expect(state.exchanged(lane: 0, unsent: [], claim: .failed) == [])
        #expect(state.pollTimerFired() == [Self.send(claim: 2)])
    }

    @Test func failedClaimStillSendsWaitingReports() {
        var state = Self.running(slots: 2, runs: [Self.run(1), Self.run(2)])
        _ = state.finished(runID: 1, attempt: 1, outcome: Self.success)
        #expect(state.flushDue() == [Self.send([Self.report(1)], claim: 1)])
        #expect(state.finished(runID: 2, attempt: 1, outcome: Self.success) == [])
        // Run 2's report goes at once without a claim; the claim goes with a later event, here
        // the report's reply.
        #expect(state.exchanged(lane: 0, unsent: [], claim: .failed) == [Self.send([Self.report(2)])])
        #expect(state.exchanged(lane: 0, unsent: [], claim: nil) == [Self.send(claim: 2)])
    }

    // MARK: Two lanes

    @Test func registeredClaimsAShareOnEveryLane() {
        var state = WorkerState(slots: 10, queues: ["default"], lanes: 2)
        #expect(state.registered() == [Self.send(lane: 0, claim: 5), Self.send(lane: 1, claim: 5)])
        // Both lanes are busy: nothing more to send.
        #expect(state.notified(queue: "default") == [])
    }

    @Test func reportTakesTheIdleLaneWhileTheOtherClaims() {
        var state = WorkerState(slots: 4, queues: ["default"], lanes: 2)
        _ = state.registered()
        #expect(state.exchanged(lane: 0, unsent: [], claim: .claimed([Self.run(1), Self.run(2)])) == [
            .start(Self.run(1)), .start(Self.run(2)),
        ])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        // Lane 1's claim of 2 is in flight, so lane 0 requests the one freed slot only.
        #expect(state.flushDue() == [Self.send(lane: 0, [Self.report(1)], claim: 1)])
        // Lane 0's claim took every claimable slot, so no claim follows until a notification.
        #expect(state.exchanged(lane: 1, unsent: [], claim: .claimed([Self.run(3)])) == [.start(Self.run(3))])
        #expect(state.finished(runID: 2, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        #expect(state.flushDue() == [Self.send(lane: 1, [Self.report(2)])])
        #expect(state.exchanged(lane: 0, unsent: [], claim: .claimed([])) == [])
        #expect(state.notified(queue: "default") == [Self.send(lane: 0, claim: 2)])
    }

    @Test func drainWaitsForEveryLane() {
        var state = WorkerState(slots: 4, queues: ["default"], lanes: 2)
        _ = state.registered()
        #expect(state.drainRequested() == [.startDrainTimer])
        #expect(state.exchanged(lane: 0, unsent: [], claim: .claimed([Self.run(1)])) == [.start(Self.run(1))])
        #expect(state.exchanged(lane: 1, unsent: [], claim: .claimed([Self.run(2)])) == [.start(Self.run(2))])
        // A draining worker sends each report at once.
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [Self.send(lane: 0, [Self.report(1)])])
        #expect(state.finished(runID: 2, attempt: 1, outcome: Self.success) == [Self.send(lane: 1, [Self.report(2)])])
        #expect(state.exchanged(lane: 1, unsent: [], claim: nil) == [])
        #expect(state.exchanged(lane: 0, unsent: [], claim: nil) == [.stop])
    }

    /// Drives the state against a simulated database through thousands of random steps: handlers
    /// finish in random order, exchanges return in random order, notifications and flushes come
    /// at random. The database records each report and then runs the claim. Every claim
    /// must request no more slots than the database has free when it runs, so that a short
    /// claim always means the backlog was empty. Every run must finish exactly once.
    @Test(arguments: [1, 2, 3])
    func claimsRequestOnlyFreedSlots(lanes: Int) {
        var random = SplitMix64(seed: UInt64(lanes) * 7919)
        let slots = 7
        var state = WorkerState(slots: slots, queues: ["default"], lanes: lanes)
        var leases: Set<Int64> = []
        var backlog: [Int64] = Array(1...400)
        var executing: [Int64] = []
        var inFlight: [Int: WorkerState.Exchange] = [:]
        var isFlushDue = false
        var finishedRuns: [Int64: Int] = [:]

        func perform(_ actions: [WorkerState.Action]) {
            for action in actions {
                switch action {
                case .send(let exchange):
                    #expect(inFlight[exchange.lane] == nil, "lane \(exchange.lane) carries one exchange at a time")
                    inFlight[exchange.lane] = exchange
                case .start(let run):
                    executing.append(run.runID)
                case .scheduleFlush:
                    isFlushDue = true
                default:
                    break
                }
            }
            #expect(state.executingCount <= slots)
        }

        perform(state.registered())
        var steps = 0
        while (!backlog.isEmpty || !executing.isEmpty || !inFlight.isEmpty || isFlushDue) && steps < 100_000 {
            steps += 1
            switch random.next() % 4 {
            case 0 where !executing.isEmpty:
                let runID = executing.remove(at: Int(random.next() % UInt64(executing.count)))
                finishedRuns[runID, default: 0] += 1
                perform(state.finished(runID: runID, attempt: 1, outcome: Self.success))
            case 1 where !inFlight.isEmpty:
                let lane = inFlight.keys.sorted()[Int(random.next() % UInt64(inFlight.count))]
                let exchange = inFlight.removeValue(forKey: lane)!
                for report in exchange.reports {
                    #expect(leases.remove(report.runID) != nil, "run \(report.runID) is reported once")
                }
                var claim: WorkerState.ClaimResult?
                if let requested = exchange.claim {
                    let free = slots - leases.count
                    #expect(requested <= free, "a claim of \(requested) found \(free) free slots")
                    let runs = backlog.prefix(min(requested, free))
                    backlog.removeFirst(runs.count)
                    leases.formUnion(runs)
                    claim = .claimed(runs.map { Self.run($0) })
                }
                perform(state.exchanged(lane: lane, unsent: [], claim: claim))
            case 2 where isFlushDue:
                isFlushDue = false
                perform(state.flushDue())
            default:
                perform(state.notified(queue: "default"))
            }
        }
        #expect(backlog.isEmpty)
        #expect(leases.isEmpty)
        #expect(finishedRuns.count == 400)
        #expect(finishedRuns.values.allSatisfy { $0 == 1 })
    }

    @Test func staleFinishIgnored() {
        var state = Self.running(slots: 2, runs: [Self.run(1, attempt: 2)])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [])
        #expect(state.executingCount == 1)
    }

    @Test func heartbeatListsRunsAndCancelsLost() {
        var state = Self.running(slots: 3, runs: [Self.run(2), Self.run(1)])
        #expect(state.heartbeatDue() == [.heartbeat([1, 2])])
        #expect(state.heartbeatDue() == [])
        #expect(state.heartbeatSucceeded(lostRunIDs: [2, 9]) == [.cancel(runID: 2, reason: .leaseLost)])
        // A cancelled handler keeps its slot until it returns.
        #expect(state.executingCount == 2)
    }

    @Test func cancelNotificationCancelsOnce() {
        var state = Self.running(slots: 2, runs: [Self.run(1)])
        #expect(state.cancelNotified(runID: 1) == [.cancel(runID: 1, reason: .cancelledByUser)])
        #expect(state.cancelNotified(runID: 1) == [])
        #expect(state.cancelNotified(runID: 7) == [])
    }

    @Test func deadlineOfOldAttemptIgnored() {
        var state = Self.running(slots: 2, runs: [Self.run(1, attempt: 2)])
        #expect(state.deadlinePassed(runID: 1, attempt: 1) == [])
        #expect(state.deadlinePassed(runID: 1, attempt: 2) == [.cancel(runID: 1, reason: .deadlinePassed)])
    }

    @Test func expiredWorkerCancelsAndRegisters() {
        var state = Self.running(slots: 2, runs: [Self.run(1), Self.run(2)])
        let actions = state.workerExpired()
        #expect(
            actions == [
                .cancel(runID: 1, reason: .leaseLost), .cancel(runID: 2, reason: .leaseLost), .register,
            ])
        #expect(state.phase == .registering)
        #expect(state.pollTimerFired() == [])
        // Both slots are still taken by the cancelled handlers.
        #expect(state.registered() == [])
        // Run 1's report waits briefly for run 2, then goes with the claim for the freed slot.
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        #expect(state.pollTimerFired() == [Self.send([Self.report(1)], claim: 1)])
    }

    @Test func drainWaitsForHandlersThenStops() {
        var state = Self.running(slots: 2, runs: [Self.run(1)])
        #expect(state.drainRequested() == [.startDrainTimer])
        #expect(state.notified(queue: "default") == [])
        let actions = state.finished(runID: 1, attempt: 1, outcome: Self.success)
        #expect(actions == [Self.send([Self.report(1)])])
        #expect(state.exchanged(lane: 0, unsent: [], claim: nil) == [.stop])
        #expect(state.phase == .stopped)
    }

    @Test func drainTimeoutCancelsHandlers() {
        var state = Self.running(slots: 2, runs: [Self.run(1), Self.run(2)])
        _ = state.drainRequested()
        #expect(
            state.drainTimedOut() == [
                .cancel(runID: 1, reason: .workerDraining), .cancel(runID: 2, reason: .workerDraining),
            ])
    }

    @Test func drainWaitsForClaimInFlight() {
        var state = WorkerState(slots: 2, queues: ["default"])
        _ = state.registered()
        #expect(state.drainRequested() == [.startDrainTimer])
        let actions = state.exchanged(lane: 0, unsent: [], claim: .claimed([Self.run(5)]))
        #expect(actions == [.start(Self.run(5))])
        _ = state.finished(runID: 5, attempt: 1, outcome: Self.success)
        #expect(state.exchanged(lane: 0, unsent: [], claim: nil) == [.stop])
    }

    @Test func idleDrainStopsAtOnce() {
        var state = Self.running(slots: 2, runs: [])
        #expect(state.drainRequested() == [.startDrainTimer, .stop])
    }

    // MARK: Waiting in the server

    static func wait(lane: Int = 0, claim: Int) -> WorkerState.Action {
        .send(WorkerState.Exchange(lane: lane, reports: [], claim: claim, waits: true))
    }

    /// Returns a state that waits in the server, registered, whose first claims (one per lane)
    /// found nothing, and the actions of the last reply.
    static func idleWaiting(slots: Int, lanes: Int = 1) -> (WorkerState, [WorkerState.Action]) {
        var state = WorkerState(slots: slots, queues: ["default"], lanes: lanes, waitsInServer: true)
        _ = state.registered()
        var actions: [WorkerState.Action] = []
        for lane in 0..<lanes {
            actions = state.exchanged(lane: lane, unsent: [], claim: .claimed([]))
        }
        return (state, actions)
    }

    @Test func idleWorkerWaitsInServerAgainAfterEachEmptyWait() {
        var (state, actions) = Self.idleWaiting(slots: 4)
        #expect(actions == [Self.wait(claim: 4)])
        #expect(state.exchanged(lane: 0, unsent: [], claim: .claimed([])) == [Self.wait(claim: 4)])
    }

    @Test func noServerWaitWhileHandlersExecute() {
        var (state, _) = Self.idleWaiting(slots: 4)
        let started = state.exchanged(lane: 0, unsent: [], claim: .claimed([Self.run(1)]))
        #expect(started == [.start(Self.run(1))])
        // The last handler's report goes at once, and the wait follows its reply.
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [Self.send([Self.report(1)])])
        #expect(state.exchanged(lane: 0, unsent: [], claim: nil) == [Self.wait(claim: 4)])
    }

    @Test func notificationDuringServerWaitClaimsAfterIt() {
        var (state, _) = Self.idleWaiting(slots: 4)
        // The one lane carries the wait, which will claim the run itself.
        #expect(state.notified(queue: "default") == [])
        let actions = state.exchanged(lane: 0, unsent: [], claim: .claimed([Self.run(1)]))
        #expect(actions == [.start(Self.run(1)), Self.send(claim: 3)])
    }

    @Test func secondLaneClaimsWhileTheFirstWaits() {
        var (state, actions) = Self.idleWaiting(slots: 4, lanes: 2)
        #expect(actions == [Self.wait(claim: 2)])
        #expect(state.notified(queue: "default") == [Self.send(lane: 1, claim: 2)])
    }

    @Test func drainStopsOnceTheServerWaitReturns() {
        var (state, _) = Self.idleWaiting(slots: 4)
        #expect(state.drainRequested() == [.startDrainTimer])
        #expect(state.exchanged(lane: 0, unsent: [], claim: .claimed([])) == [.stop])
    }

}

/// A small deterministic generator, so that a failing sequence repeats.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
