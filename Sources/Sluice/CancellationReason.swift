/// The reason the worker cancelled a handler's Swift task.
public enum CancellationReason: String, Sendable, Hashable, CustomStringConvertible {
    /// The run was cancelled with `sluice.cancel` or `RunHandle.cancel`.
    case cancelledByUser = "cancelled by user"
    /// The worker no longer holds the run: its lease expired or its incarnation was stopped, and
    /// the run was handed back to the queue.
    case leaseLost = "lease lost"
    /// The attempt passed its execution deadline (the task's `timeout`).
    case deadlinePassed = "deadline passed"
    /// The worker is shutting down and its drain timeout passed.
    case workerDraining = "worker draining"

    public var description: String { rawValue }
}
