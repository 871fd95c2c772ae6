import SluicePostgres
import Testing

@testable import SluiceCoordinator

/// Unit tests of the coordinator's decisions, with no database and a hand-made clock.
@Suite struct CoordinatorStateTests {
    let start = ContinuousClock.now
    let options = CoordinatorOptions(
        tickLimit: 100, leadershipRetryInterval: .seconds(1), maximumSleep: .seconds(30),
        minimumSleep: .milliseconds(5), maintenanceInterval: .seconds(60), vacuumInterval: .seconds(60),
        errorRetryDelay: .seconds(1),
        reconnectPolicy: ReconnectPolicy(
            initialDelay: .milliseconds(100), maximumDelay: .seconds(5), maximumAttempts: nil))

    /// Returns a state that has just become leader and ticked once, with maintenance done.
    func leaderState(options: CoordinatorOptions? = nil) -> CoordinatorState {
        var state = CoordinatorState(options: options ?? self.options)
        _ = state.handle(.started)
        _ = state.handle(.connected)
        _ = state.handle(.lockAcquired(at: start))
        _ = state.handle(.listening)
        _ = state.handle(.ticked(TickResult(counts: [:], secondsUntilDue: nil), at: start))
        _ = state.handle(.maintenanceFinished(at: start))
        return state
    }

    func idleTick(secondsUntilDue: Double?) -> TickResult {
        TickResult(counts: ["promoted": 0, "expired": 0, "timed_out": 0], secondsUntilDue: secondsUntilDue)
    }

    @Test func startConnectsAtOnce() {
        var state = CoordinatorState(options: options)
        #expect(state.handle(.started) == .connect(after: .zero))
        #expect(state.phase == .connecting)
        #expect(!state.isLeader)
    }

    @Test func connectedCandidateTriesLock() {
        var state = CoordinatorState(options: options)
        _ = state.handle(.started)
        #expect(state.handle(.connected) == .tryLock)
        #expect(state.phase == .candidate)
    }

    @Test func lockHeldElsewhereWaitsRetryInterval() {
        var state = CoordinatorState(options: options)
        _ = state.handle(.started)
        _ = state.handle(.connected)
        #expect(state.handle(.lockHeldElsewhere) == .waitForLeadership(.seconds(1)))
        #expect(state.handle(.wokeUp(at: start)) == .tryLock)
        #expect(!state.isLeader)
    }

    @Test func lockAcquiredListensThenTicks() {
        var state = CoordinatorState(options: options)
        _ = state.handle(.started)
        _ = state.handle(.connected)
        #expect(state.handle(.lockAcquired(at: start)) == .listen)
        #expect(state.isLeader)
        #expect(state.handle(.listening) == .tick(limit: 100))
    }

    @Test func newLeaderMaintainsAfterFirstTick() {
        var state = CoordinatorState(options: options)
        _ = state.handle(.started)
        _ = state.handle(.connected)
        _ = state.handle(.lockAcquired(at: start))
        _ = state.handle(.listening)
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: nil), at: start)) == .maintain)
        #expect(state.handle(.maintenanceFinished(at: start)) == .tick(limit: 100))
        #expect(state.nextMaintenanceAt == start + .seconds(60))
    }

    @Test func countAtLimitTicksAgainAtOnce() {
        var state = leaderState()
        let busy = TickResult(counts: ["promoted": 100, "expired": 3, "timed_out": 0], secondsUntilDue: -5)
        #expect(state.handle(.ticked(busy, at: start)) == .tick(limit: 100))
    }

    @Test func unknownCountColumnAtLimitTicksAgain() {
        var state = leaderState()
        let busy = TickResult(counts: ["promoted": 0, "cron_fired": 100], secondsUntilDue: nil)
        #expect(state.handle(.ticked(busy, at: start)) == .tick(limit: 100))
    }

    @Test func sleepsUntilNextDueTime() {
        var state = leaderState()
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: 2.5), at: start)) == .sleep(.milliseconds(2500)))
    }

    @Test func sleepIsCappedAtMaximum() {
        var state = leaderState()
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: 3600), at: start)) == .sleep(.seconds(30)))
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: nil), at: start)) == .sleep(.seconds(30)))
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: .infinity), at: start)) == .sleep(.seconds(30)))
    }

    @Test func pastDueTimeSleepsMinimum() {
        var state = leaderState()
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: -3), at: start)) == .sleep(.milliseconds(5)))
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: 0.000_001), at: start)) == .sleep(.milliseconds(5)))
    }

    @Test func sleepEndsAtMaintenanceTime() {
        var state = leaderState()
        let now = start + .seconds(50)
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: nil), at: now)) == .sleep(.seconds(10)))
    }

    @Test func maintenanceDueAfterInterval() {
        var state = leaderState()
        let now = start + .seconds(61)
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: 5), at: now)) == .maintain)
        #expect(state.handle(.maintenanceFinished(at: now)) == .tick(limit: 100))
        #expect(state.nextMaintenanceAt == now + .seconds(60))
    }

    @Test func vacuumLookBacksOffWhileIdle() {
        var state = leaderState(options: CoordinatorOptions(maintenanceInterval: .seconds(60), vacuumInterval: .seconds(5)))
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: nil), at: start)) == .sleep(.seconds(5)))
        let first = start + .seconds(5)
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: nil), at: first)) == .vacuumHotTables)
        #expect(state.handle(.vacuumFinished(deadRowsBefore: 0, deadRowsAfter: 0, at: first)) == .tick(limit: 1000))
        #expect(state.nextVacuumAt == first + .seconds(10))
        _ = state.handle(.vacuumFinished(deadRowsBefore: 0, deadRowsAfter: 0, at: first))
        _ = state.handle(.vacuumFinished(deadRowsBefore: 0, deadRowsAfter: 0, at: first))
        _ = state.handle(.vacuumFinished(deadRowsBefore: 0, deadRowsAfter: 0, at: first))
        // Doubling stops at the maintenance interval.
        #expect(state.nextVacuumAt == first + .seconds(60))
        _ = state.handle(.vacuumFinished(deadRowsBefore: 5_000, deadRowsAfter: 0, at: first))
        #expect(state.nextVacuumAt == first + .seconds(5))
    }

    @Test func vacuumLookStaysNearWhileDeadRowsGrow() {
        var state = leaderState(options: CoordinatorOptions(maintenanceInterval: .seconds(60), vacuumInterval: .seconds(2)))
        // Fewer dead rows than a vacuum needs, but more at each look: runs are flowing.
        _ = state.handle(.vacuumFinished(deadRowsBefore: 300, deadRowsAfter: 300, at: start))
        #expect(state.nextVacuumAt == start + .seconds(2))
        _ = state.handle(.vacuumFinished(deadRowsBefore: 600, deadRowsAfter: 600, at: start))
        #expect(state.nextVacuumAt == start + .seconds(2))
        // No new dead rows: the runs stopped, so the looks back off.
        _ = state.handle(.vacuumFinished(deadRowsBefore: 600, deadRowsAfter: 600, at: start))
        #expect(state.nextVacuumAt == start + .seconds(4))
        // A vacuum that removed rows keeps the looks near.
        _ = state.handle(.vacuumFinished(deadRowsBefore: 600, deadRowsAfter: 0, at: start))
        #expect(state.nextVacuumAt == start + .seconds(2))
        // A vacuum that removed nothing while no rows were added backs off, as when a snapshot can
        // still read the dead rows.
        _ = state.handle(.vacuumFinished(deadRowsBefore: 1_500, deadRowsAfter: 1_500, at: start))
        _ = state.handle(.vacuumFinished(deadRowsBefore: 1_500, deadRowsAfter: 1_500, at: start))
        #expect(state.nextVacuumAt == start + .seconds(4))
    }

    @Test func vacuumLookComesSoonerAfterShed() {
        var state = leaderState(options: CoordinatorOptions(maintenanceInterval: .seconds(60), vacuumInterval: .seconds(2)))
        _ = state.handle(.vacuumFinished(deadRowsBefore: 30_000, deadRowsAfter: 30_000, shed: true, at: start))
        #expect(state.nextVacuumAt == start + .milliseconds(500))
        // The shed rows are gone: the next look that sheds nothing waits the full interval while
        // dead rows grow.
        _ = state.handle(.vacuumFinished(deadRowsBefore: 2_000, deadRowsAfter: 2_000, at: start))
        #expect(state.nextVacuumAt == start + .seconds(2))
    }

    @Test func vacuumLookWaitsForMaintenance() {
        var state = leaderState()
        let now = start + .seconds(61)
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: nil), at: now)) == .maintain)
        #expect(state.handle(.maintenanceFinished(at: now)) == .tick(limit: 100))
        #expect(state.handle(.ticked(idleTick(secondsUntilDue: nil), at: now)) == .vacuumHotTables)
    }

    @Test func wakeUpTicks() {
        var state = leaderState()
        _ = state.handle(.ticked(idleTick(secondsUntilDue: 10), at: start))
        #expect(state.handle(.wokeUp(at: start + .seconds(1))) == .tick(limit: 100))
    }

    @Test func failedTicksBackOff() {
        var state = leaderState()
        #expect(state.handle(.tickFailed) == .sleep(.seconds(1)))
        #expect(state.handle(.tickFailed) == .sleep(.seconds(2)))
        #expect(state.handle(.tickFailed) == .sleep(.seconds(4)))
        for _ in 0..<1000 {
            _ = state.handle(.tickFailed)
        }
        #expect(state.handle(.tickFailed) == .sleep(.seconds(30)))
        #expect(state.isLeader)
        _ = state.handle(.wokeUp(at: start))
        _ = state.handle(.ticked(idleTick(secondsUntilDue: 1), at: start))
        #expect(state.handle(.tickFailed) == .sleep(.seconds(1)))
    }

    @Test func connectionLostDropsLeadership() {
        var state = leaderState()
        #expect(state.handle(.connectionLost) == .connect(after: .milliseconds(100)))
        #expect(!state.isLeader)
        #expect(state.phase == .connecting)
        #expect(state.nextMaintenanceAt == nil)
        #expect(state.nextVacuumAt == nil)
    }

    @Test func reconnectBacksOffUntilConnected() {
        var state = leaderState()
        #expect(state.handle(.connectionLost) == .connect(after: .milliseconds(100)))
        #expect(state.handle(.connectionFailed) == .connect(after: .milliseconds(200)))
        #expect(state.handle(.connectionFailed) == .connect(after: .milliseconds(400)))
        for _ in 0..<100 {
            _ = state.handle(.connectionFailed)
        }
        #expect(state.handle(.connectionFailed) == .connect(after: .seconds(5)))
        #expect(state.handle(.connected) == .tryLock)
        #expect(state.handle(.connectionLost) == .connect(after: .milliseconds(100)))
    }

    @Test func reconnectKeepsTryingWhenPolicyGivesUp() {
        var limited = options
        limited.reconnectPolicy = ReconnectPolicy(
            initialDelay: .milliseconds(100), maximumDelay: .seconds(2), maximumAttempts: 2)
        var state = CoordinatorState(options: limited)
        _ = state.handle(.started)
        #expect(state.handle(.connectionFailed) == .connect(after: .milliseconds(100)))
        #expect(state.handle(.connectionFailed) == .connect(after: .seconds(2)))
        #expect(state.handle(.connectionFailed) == .connect(after: .seconds(2)))
    }

    @Test func candidateLosingConnectionReconnects() {
        var state = CoordinatorState(options: options)
        _ = state.handle(.started)
        _ = state.handle(.connected)
        #expect(state.handle(.connectionLost) == .connect(after: .milliseconds(100)))
        #expect(state.phase == .connecting)
    }

    @Test func stopWhileLeadingReleasesLock() {
        var state = leaderState()
        #expect(state.handle(.stopRequested) == .stop(releaseLock: true))
        #expect(state.phase == .stopped)
        #expect(!state.isLeader)
    }

    @Test func stopWhileCandidateReleasesNothing() {
        var state = CoordinatorState(options: options)
        _ = state.handle(.started)
        _ = state.handle(.connected)
        #expect(state.handle(.stopRequested) == .stop(releaseLock: false))
    }

    @Test func stoppedStateIgnoresEvents() {
        var state = leaderState()
        _ = state.handle(.stopRequested)
        #expect(state.handle(.lockAcquired(at: start)) == .stop(releaseLock: false))
        #expect(state.handle(.wokeUp(at: start)) == .stop(releaseLock: false))
        #expect(!state.isLeader)
    }
}
