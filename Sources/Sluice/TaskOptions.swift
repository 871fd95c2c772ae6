/// The options of a task, mapped one to one onto the arguments of `sluice.define_task`.
public struct TaskOptions: Sendable, Hashable {
    /// The queue the task's runs wait in; a name like the task's. Default `"default"`.
    public var queue: String
    /// Attempts and backoff; default `.default` (3 attempts, 1 s doubling up to 600 s).
    public var retries: RetryPolicy
    /// The execution timeout of each attempt, 1 s to 30 days; default 300 s.
    public var timeout: Duration
    /// How long a run may wait in the queue before its first start, 1 s to 365 days, or nil
    /// for no limit (the default).
    public var scheduleTimeout: Duration?
    /// The default priority of runs, 0 to 9, higher first; default 0.
    public var priority: Int

    /// Creates options; see the properties for the defaults and ranges.
    public init(
        queue: String = "default", retries: RetryPolicy = .default, timeout: Duration = .seconds(300),
        scheduleTimeout: Duration? = nil, priority: Int = 0
    ) {
        self.queue = queue
        self.retries = retries
        self.timeout = timeout
        self.scheduleTimeout = scheduleTimeout
        self.priority = priority
    }

    /// Throws `SluiceError` with code `SL004` naming the first invalid option.
    func validate() throws {
        try Validation.checkName("queue name", queue)
        try retries.validate()
        try Validation.check("timeout", timeout, in: .seconds(1) ... .seconds(30 * 86_400))
        if let scheduleTimeout {
            try Validation.check("scheduleTimeout", scheduleTimeout, in: .seconds(1) ... .seconds(365 * 86_400))
        }
        try Validation.check("priority", Double(priority), in: 0...9)
    }
}
