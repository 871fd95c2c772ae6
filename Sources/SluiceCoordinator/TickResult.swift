/// What one call of `sluice.tick()` did and when it has work again.
///
/// The counts are kept by column name (`promoted`, `expired`, `timed_out`, ...), so that a
/// new kind of time-driven work added to `tick()` needs no change here.
public struct TickResult: Sendable, Hashable {
    /// The number of rows handled per kind of work, by result column name.
    public var counts: [String: Int]
    /// Seconds from the database's `sluice.now()` to `next_due_at`; negative when that time
    /// has passed, nil when nothing waits for a time.
    public var secondsUntilDue: Double?

    /// Creates a result.
    public init(counts: [String: Int], secondsUntilDue: Double?) {
        self.counts = counts
        self.secondsUntilDue = secondsUntilDue
    }

    /// Returns whether any count reached `limit`, which means more work of that kind may be
    /// waiting.
    public func reachedLimit(_ limit: Int) -> Bool {
        counts.values.contains { $0 >= limit }
    }

    /// The total of all counts.
    public var total: Int {
        counts.values.reduce(0, +)
    }
}
