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

    /// A state that registered and claimed `runs` out of a first claim of all slots.
    static func running(slots: Int, runs: [WorkerState.ClaimedRun]) -> WorkerState {
        var state = WorkerState(slots: slots, queues: ["default"])
        _ = state.registered()
        _ = state.claimed(runs, requested: slots)
        return state
    }

    @Test func registeredClaimsAllSlots() {
        var state = WorkerState(slots: 4, queues: ["default"])
        #expect(state.registered() == [.claim(4)])
        #expect(state.phase == .running)
    }

    @Test func oneClaimInFlightAtATime() {
        var state = WorkerState(slots: 4, queues: ["default"])
        _ = state.registered()
        #expect(state.notified(queue: "default") == [])
        #expect(state.pollTimerFired() == [])
        // The notifications that arrived meanwhile make the state claim again after the reply.
        let actions = state.claimed([Self.run(1)], requested: 4)
        #expect(actions == [.start(Self.run(1)), .claim(3)])
    }

    @Test func otherQueueNotificationIgnored() {
        var state = Self.running(slots: 4, runs: [])
        #expect(state.notified(queue: "other") == [])
        #expect(state.notified(queue: "default") == [.claim(4)])
    }

    @Test func partialClaimWaitsForNotification() {
        var state = Self.running(slots: 4, runs: [])
        _ = state.notified(queue: "default")
        _ = state.claimed([Self.run(1)], requested: 4)
        let actions = state.finished(runID: 1, attempt: 1, outcome: Self.success)
        #expect(actions == [.report([.init(runID: 1, attempt: 1, outcome: Self.success)])])
    }

    @Test func fullClaimClaimsWhenSlotFrees() {
        var state = Self.running(slots: 2, runs: [Self.run(1), Self.run(2)])
        #expect(state.notified(queue: "default") == [])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        #expect(state.flushDue() == [.report([.init(runID: 1, attempt: 1, outcome: Self.success)]), .claim(1)])
    }

    @Test func finishesCoalesceIntoOneBatch() {
        var state = Self.running(slots: 3, runs: [Self.run(1), Self.run(2), Self.run(3)])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        #expect(state.finished(runID: 2, attempt: 1, outcome: Self.success) == [])
        let reports = [1, 2].map { WorkerState.Report(runID: $0, attempt: 1, outcome: Self.success) }
        #expect(state.flushDue() == [.report(reports), .claim(2)])
    }

    @Test func lastFinishFlushesAtOnce() {
        var state = Self.running(slots: 2, runs: [Self.run(1), Self.run(2)])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        // No handler is left to wait for, so the reports go now.
        let reports = [1, 2].map { WorkerState.Report(runID: $0, attempt: 1, outcome: Self.success) }
        #expect(state.finished(runID: 2, attempt: 1, outcome: Self.success) == [.report(reports), .claim(2)])
        #expect(state.flushDue() == [])
    }

    @Test func reportsBatchWhileOneIsInFlight() {
        var state = Self.running(slots: 3, runs: [Self.run(1), Self.run(2), Self.run(3)])
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        let first = state.flushDue()
        #expect(first.contains(.report([.init(runID: 1, attempt: 1, outcome: Self.success)])))
        let failure = WorkerState.Outcome.failed(message: "boom", retryable: true)
        #expect(!state.finished(runID: 2, attempt: 1, outcome: failure).contains { if case .report = $0 { true } else { false } })
        _ = state.finished(runID: 3, attempt: 1, outcome: Self.success)
        #expect(
            state.reported() == [
                .report([
                    .init(runID: 2, attempt: 1, outcome: failure), .init(runID: 3, attempt: 1, outcome: Self.success),
                ])
            ])
    }

    @Test func claimWaitsForReportInFlight() {
        var state = Self.running(slots: 2, runs: [Self.run(1), Self.run(2)])
        let first = WorkerState.Report(runID: 1, attempt: 1, outcome: Self.success)
        let second = WorkerState.Report(runID: 2, attempt: 1, outcome: Self.success)
        #expect(state.finished(runID: 1, attempt: 1, outcome: Self.success) == [.scheduleFlush])
        #expect(state.flushDue() == [.report([first]), .claim(1)])
        #expect(state.claimed([], requested: 1) == [])
        // Run 2's report waits for the batch in flight, and the claim waits for run 2's report:
        // sent earlier, it would find run 2 still holding a slot in the database.
        #expect(state.finished(runID: 2, attempt: 1, outcome: Self.success) == [])
        #expect(state.notified(queue: "default") == [])
        #expect(state.reported() == [.report([second]), .claim(2)])
    }

    @Test func failedReportIsSentAgain() {
        var state = Self.running(slots: 1, runs: [Self.run(1)])
        let report = WorkerState.Report(runID: 1, attempt: 1, outcome: Self.success)
        _ = state.finished(runID: 1, attempt: 1, outcome: Self.success)
        #expect(state.reportFailed([report]) == [])
        #expect(state.reportRetryDue() == [.report([report])])
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
        #expect(state.pollTimerFired() == [.report([.init(runID: 1, attempt: 1, outcome: Self.success)]), .claim(1)])
    }

    @Test func drainWaitsForHandlersThenStops() {
        var state = Self.running(slots: 2, runs: [Self.run(1)])
        #expect(state.drainRequested() == [.startDrainTimer])
        #expect(state.notified(queue: "default") == [])
        let actions = state.finished(runID: 1, attempt: 1, outcome: Self.success)
        #expect(actions == [.report([.init(runID: 1, attempt: 1, outcome: Self.success)])])
        #expect(state.reported() == [.stop])
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
        let actions = state.claimed([Self.run(5)], requested: 2)
        #expect(actions == [.start(Self.run(5))])
        _ = state.finished(runID: 5, attempt: 1, outcome: Self.success)
        #expect(state.reported() == [.stop])
    }

    @Test func idleDrainStopsAtOnce() {
        var state = Self.running(slots: 2, runs: [])
        #expect(state.drainRequested() == [.startDrainTimer, .stop])
    }
}
