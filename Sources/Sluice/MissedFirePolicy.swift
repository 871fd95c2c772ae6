/// What a cron schedule enqueues for fire times that passed while no coordinator ran: the
/// `missed` argument of `sluice.create_schedule`.
///
/// A fire time counts as missed when the fire time after it had also passed before a
/// coordinator handled it. The most recent passed fire time is on time and fires under every
/// policy, unless the schedule missed earlier ones and the policy is `skip`.
public enum MissedFirePolicy: String, Sendable, Hashable, CaseIterable {
    /// Enqueues one run for the most recent passed fire time and skips the older ones (default).
    case latest
    /// Enqueues a run for every passed fire time, oldest first, but at most the 1000 most recent
    /// (`sluice.max_missed_fires()`).
    case all
    /// Enqueues nothing for the passed fire times; the schedule resumes at its next future one.
    case skip
}
