import SluicePostgres

/// The decisions of a coordinator, as a value type with no I/O: the runner reports each
/// event and performs the action it gets back, then reports how that went.
///
/// A coordinator is a candidate until its connection holds the leadership lock, then the
/// leader. Only the leader listens, ticks and maintains, always on the connection that holds
/// the lock, so losing that connection ends the leadership at once.
public struct CoordinatorState: Sendable {
    /// Where the coordinator is in its life.
    public enum Phase: Sendable, Hashable {
        /// Not started yet.
        case idle
        /// Opening the leadership connection.
        case connecting
        /// Connected, trying to take the leadership lock.
        case candidate
        /// Holding the leadership lock.
        case leader
        /// Stopped; no further actions.
        case stopped
    }

    /// Something that happened, reported by the runner.
    public enum Event: Sendable, Hashable {
        /// The runner starts.
        case started
        /// The leadership connection opened.
        case connected
        /// The leadership connection could not be opened.
        case connectionFailed
        /// The lock attempt succeeded; `at` is the runner's monotonic clock.
        case lockAcquired(at: ContinuousClock.Instant)
        /// Another session holds the lock.
        case lockHeldElsewhere
        /// The leader now listens for timer notifications.
        case listening
        /// `tick()` returned; `at` is the runner's monotonic clock.
        case ticked(TickResult, at: ContinuousClock.Instant)
        /// `tick()` failed with an error that is not a connection error.
        case tickFailed
        /// `maintain()` returned or failed; either way the next run is an interval away.
        case maintenanceFinished(at: ContinuousClock.Instant)
        /// The look for hot tables to vacuum finished. The hot tables had `deadRowsBefore` dead
        /// rows in all when it looked and `deadRowsAfter` once it had vacuumed what it listed.
        /// `shed` is true when `sluice.shed_dead_rows()` truncated dead rows that the vacuums
        /// could not remove.
        case vacuumFinished(deadRowsBefore: Int, deadRowsAfter: Int, shed: Bool = false, at: ContinuousClock.Instant)
        /// A sleep or wait ended: its time passed, a timer notification arrived, or the
        /// listener reconnected.
        case wokeUp(at: ContinuousClock.Instant)
        /// A call on the leadership connection failed because the session is gone.
        case connectionLost
        /// The runner was asked to stop.
        case stopRequested
    }

    /// What the runner does next.
    public enum Action: Sendable, Hashable {
        /// Open a new leadership connection after waiting `after`.
        case connect(after: Duration)
        /// Try `pg_try_advisory_lock` on the leadership connection.
        case tryLock
        /// Wait, then report `.wokeUp` to try the lock again.
        case waitForLeadership(Duration)
        /// Start listening on `sluice_timer`.
        case listen
        /// Call `sluice.tick(limit)` on the leadership connection.
        case tick(limit: Int)
        /// Call `sluice.maintain()` on the leadership connection.
        case maintain
        /// Vacuum the hot tables that `sluice.hot_tables_to_vacuum()` lists.
        case vacuumHotTables
        /// Sleep up to the duration; a timer notification or a listener reconnect ends it
        /// early. Then report `.wokeUp`.
        case sleep(Duration)
        /// Stop: close the connection, which releases the lock when `releaseLock` is true.
        case stop(releaseLock: Bool)
    }

    /// The settings this state decides with.
    public let options: CoordinatorOptions
    /// The current phase.
    public private(set) var phase: Phase = .idle
    /// When the leader next calls `maintain()`; nil while not leading.
    public private(set) var nextMaintenanceAt: ContinuousClock.Instant?
    /// When the leader next looks for hot tables to vacuum; nil while not leading.
    public private(set) var nextVacuumAt: ContinuousClock.Instant?
    /// The wait before the next look for hot tables: `vacuumInterval`, doubled after each look
    /// that removed no dead rows and found no more than the previous look left, up to
    /// `maintenanceInterval`.
    private var vacuumDelay: Duration
    /// The dead rows the previous look left in the hot tables.
    private var deadRowsLeft = 0

    private var reconnectBackoff: ReconnectBackoff
    private var failedTicks = 0

    /// Creates the state of a coordinator that has not started.
    public init(options: CoordinatorOptions = CoordinatorOptions()) {
        self.options = options
        reconnectBackoff = ReconnectBackoff(policy: options.reconnectPolicy)
        vacuumDelay = options.vacuumInterval
    }

    /// Whether this coordinator holds the leadership lock.
    public var isLeader: Bool {
        phase == .leader
    }

    /// Records `event` and returns the next action.
    public mutating func handle(_ event: Event) -> Action {
        if phase == .stopped {
            return .stop(releaseLock: false)
        }
        switch event {
        case .started:
            phase = .connecting
            return .connect(after: .zero)
        case .connected:
            reconnectBackoff.recordSuccess()
            phase = .candidate
            return .tryLock
        case .connectionFailed, .connectionLost:
            return reconnect()
        case .lockAcquired(let now):
            phase = .leader
            failedTicks = 0
            // Maintenance runs right after the first tick of a new leader.
            nextMaintenanceAt = now
            vacuumDelay = options.vacuumInterval
            nextVacuumAt = now + vacuumDelay
            deadRowsLeft = 0
            return .listen
        case .lockHeldElsewhere:
            return .waitForLeadership(options.leadershipRetryInterval)
        case .listening:
            return .tick(limit: options.tickLimit)
        case .ticked(let result, let now):
            failedTicks = 0
            return afterTick(result, now: now)
        case .tickFailed:
            failedTicks += 1
            return .sleep(errorDelay())
        case .maintenanceFinished(let now):
            nextMaintenanceAt = now + options.maintenanceInterval
            return .tick(limit: options.tickLimit)
        case .vacuumFinished(let deadRowsBefore, let deadRowsAfter, let shed, let now):
            // Runs that still flow leave dead rows behind, so the next look stays near: after an
            // idle minute a sudden load would otherwise go unvacuumed for up to a minute. A
            // vacuum that removed nothing, because a snapshot can still read the rows, is no
            // reason to stay. A look that shed rows is different. The snapshot is likely still
            // open, and until the next shed every claim reads past each run deleted since this
            // one, so the next look comes after a quarter of the interval. The statistics may not
            // show the truncation yet, so a shed counts as leaving no dead rows.
            if shed {
                vacuumDelay = options.vacuumInterval / 4
            } else if deadRowsBefore > deadRowsLeft || deadRowsAfter < deadRowsBefore {
                vacuumDelay = options.vacuumInterval
            } else {
                vacuumDelay = min(vacuumDelay * 2, max(options.maintenanceInterval, options.vacuumInterval))
            }
            deadRowsLeft = shed ? 0 : deadRowsAfter
            nextVacuumAt = now + vacuumDelay
            return .tick(limit: options.tickLimit)
        case .wokeUp:
            switch phase {
            case .leader:
                return .tick(limit: options.tickLimit)
            case .candidate:
                return .tryLock
            case .idle, .connecting:
                return .connect(after: .zero)
            case .stopped:
                return .stop(releaseLock: false)
            }
        case .stopRequested:
            let wasLeader = phase == .leader
            phase = .stopped
            nextMaintenanceAt = nil
            nextVacuumAt = nil
            return .stop(releaseLock: wasLeader)
        }
    }

    /// Drops any leadership and schedules the next connection attempt with backoff.
    private mutating func reconnect() -> Action {
        phase = .connecting
        nextMaintenanceAt = nil
        nextVacuumAt = nil
        switch reconnectBackoff.recordFailure() {
        case .retry(let delay):
            return .connect(after: delay)
        case .giveUp:
            // The options ask to give up, but a daemon has nothing better to do than to keep
            // trying at the longest delay.
            return .connect(after: options.reconnectPolicy.maximumDelay)
        }
    }

    /// Decides between ticking again, maintaining and sleeping after a successful tick.
    private mutating func afterTick(_ result: TickResult, now: ContinuousClock.Instant) -> Action {
        if result.reachedLimit(options.tickLimit) {
            return .tick(limit: options.tickLimit)
        }
        if let nextMaintenanceAt, now >= nextMaintenanceAt {
            return .maintain
        }
        if let nextVacuumAt, now >= nextVacuumAt {
            return .vacuumHotTables
        }
        var delay = options.maximumSleep
        if let seconds = result.secondsUntilDue, seconds.isFinite {
            delay = seconds <= 0 ? .zero : min(delay, .seconds(min(seconds, 1e9)))
        }
        if let nextMaintenanceAt {
            delay = min(delay, nextMaintenanceAt - now)
        }
        if let nextVacuumAt {
            delay = min(delay, nextVacuumAt - now)
        }
        return .sleep(max(delay, options.minimumSleep))
    }

    /// The wait after consecutive failed ticks: `errorRetryDelay`, doubling per failure up to
    /// `maximumSleep`.
    private func errorDelay() -> Duration {
        var delay = options.errorRetryDelay
        for _ in 1..<min(max(failedTicks, 1), 32) where delay < options.maximumSleep {
            delay = delay * 2
        }
        return min(delay, options.maximumSleep)
    }
}
