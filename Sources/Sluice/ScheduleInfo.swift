import Foundation
import SluicePostgres

/// A snapshot of one cron schedule, from the view `sluice.schedule_status`.
public struct ScheduleInfo: Sendable, Hashable {
    /// The schedule's unique name.
    public var name: String
    /// The cron expression, with 5 or 6 fields or a macro such as `@hourly`.
    public var cron: String
    /// The IANA time zone the expression is read in.
    public var timeZone: String
    /// The task each fire time enqueues a run of.
    public var task: String
    /// The missed-fire policy.
    public var missed: MissedFirePolicy
    /// Whether the schedule is paused.
    public var isPaused: Bool
    /// Why the schedule is paused: a pause request, or the error that stopped it from firing.
    public var pausedReason: String?
    /// The next fire time, or nil while paused.
    public var nextFireAt: Date?
    /// The latest fire time that enqueued a run, or nil before the first.
    public var lastFiredAt: Date?
    /// The run of the latest fire time, while its fire row is kept.
    public var lastRunID: Int64?
    /// The state of that run.
    public var lastRunStatus: RunStatus?
    /// The input object of every run.
    public var input: PostgresJSON
    /// The metadata object of every run, to which each run adds `schedule` and `fire_at`.
    public var metadata: PostgresJSON
    /// The priority of the runs, 0 to 9, or nil for the task's priority.
    public var priority: Int?
}
