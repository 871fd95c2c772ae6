import SluicePostgres

/// Timing and batch settings of a coordinator.
public struct CoordinatorOptions: Sendable, Hashable {
    /// The `p_limit` passed to `sluice.tick()`: the most rows of each kind one call handles;
    /// default 1000. A count that reaches it makes the coordinator call again at once.
    public var tickLimit: Int
    /// How long a candidate waits between attempts to take the leadership lock; default 1 s.
    public var leadershipRetryInterval: Duration
    /// The longest sleep between ticks, so that leases of silent workers are noticed even
    /// when no timer is due; default 30 s.
    public var maximumSleep: Duration
    /// The shortest sleep between ticks that found no more work, so a due time that stays
    /// in the past (rows locked by another session) cannot cause a busy loop; default 5 ms.
    public var minimumSleep: Duration
    /// How often the leader calls `sluice.maintain()` (partition rotation and retention);
    /// default 60 s.
    public var maintenanceInterval: Duration
    /// How often the leader looks for hot tables (`sluice.ready`, `sluice.leases` and the
    /// other tables of live runs) with 1,000 dead rows or more, and vacuums them.
    /// Default 2 s. Autovacuum visits a database at most once per `autovacuum_naptime` (1 min
    /// by default). A busy queue leaves dead rows faster than that, and every claim reads the
    /// index pages of the dead entries at the head of the claim index. While the looks remove
    /// no dead rows and find no new ones, each waits twice as long as the one before, up to
    /// `maintenanceInterval`. After a look that shed dead rows a long transaction kept (see
    /// `sluice.shed_dead_rows()`), the next one comes after a quarter of this interval.
    public var vacuumInterval: Duration
    /// How long the leader waits before calling `tick()` again after it failed with a
    /// server error; default 1 s.
    public var errorRetryDelay: Duration
    /// The backoff for reopening the leadership connection after it failed or was lost;
    /// default 100 ms doubling up to 5 s, retrying forever.
    public var reconnectPolicy: ReconnectPolicy

    /// Creates options; see the properties for the defaults.
    public init(
        tickLimit: Int = 1000,
        leadershipRetryInterval: Duration = .seconds(1),
        maximumSleep: Duration = .seconds(30),
        minimumSleep: Duration = .milliseconds(5),
        maintenanceInterval: Duration = .seconds(60),
        vacuumInterval: Duration = .seconds(2),
        errorRetryDelay: Duration = .seconds(1),
        reconnectPolicy: ReconnectPolicy = ReconnectPolicy(
            initialDelay: .milliseconds(100), maximumDelay: .seconds(5), maximumAttempts: nil)
    ) {
        self.tickLimit = tickLimit
        self.leadershipRetryInterval = leadershipRetryInterval
        self.maximumSleep = maximumSleep
        self.minimumSleep = minimumSleep
        self.maintenanceInterval = maintenanceInterval
        self.vacuumInterval = vacuumInterval
        self.errorRetryDelay = errorRetryDelay
        self.reconnectPolicy = reconnectPolicy
    }
}
