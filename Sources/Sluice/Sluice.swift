/// The namespace for declaring tasks.
public enum Sluice {
    /// Declares a task.
    ///
    /// ```swift
    /// let sendReceipt = Sluice.task("send-receipt", retries: .exponential(maxAttempts: 5),
    ///                               timeout: .seconds(30)) { (input: Receipt, context) in
    ///     try await mailer.send(orderID: input.orderID)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - name: the task name: 1 to 128 letters, digits and `_ . : / -`, starting with a letter
    ///     or digit.
    ///   - queue: the queue its runs wait in; default `"default"`.
    ///   - retries: attempts and backoff; default `.default` (3 attempts, 1 s doubling up to
    ///     600 s, jitter 0.1).
    ///   - timeout: the execution timeout of each attempt, 1 s to 30 days; default 300 s.
    ///   - scheduleTimeout: how long a run may wait before its first start, 1 s to 365 days;
    ///     default nil (no limit).
    ///   - priority: the default priority of its runs, 0 to 9, higher first; default 0.
    ///   - concurrency: limits on runs running at once per key, such as
    ///     `[.perKey("$.user_id", max: 1)]`; default none.
    ///   - rateLimits: rate limits each run takes units from when it starts, such as
    ///     `[.static("openai")]`; default none.
    ///   - affinity: requirements and preferences over worker labels, such as
    ///     `[.require("gpu", .equal("a100"))]`; default none.
    ///   - slotCost: the worker slots one run occupies, 1 to 100000; default 1.
    ///   - handler: the code that executes one attempt. Throw a `NonRetryableError` (or
    ///     `.nonRetryable(error)`) to fail the run without further retries.
    ///
    /// Declaring does not throw. The name and options are validated when the task is defined,
    /// enqueued or given to a worker, which throw `SluiceError` with code `SL004` naming the
    /// first invalid value.
    public static func task<Input: Codable & Sendable, Output: Codable & Sendable>(
        _ name: String, queue: String = "default", retries: RetryPolicy = .default,
        timeout: Duration = .seconds(300), scheduleTimeout: Duration? = nil, priority: Int = 0,
        concurrency: [ConcurrencyRule] = [], rateLimits: [RateLimitRule] = [], affinity: [AffinityRule] = [],
        slotCost: Int = 1,
        handler: @escaping @Sendable (Input, TaskContext) async throws -> Output
    ) -> TaskDefinition<Input, Output> {
        let options = TaskOptions(
            queue: queue, retries: retries, timeout: timeout, scheduleTimeout: scheduleTimeout, priority: priority,
            concurrency: concurrency, rateLimits: rateLimits, affinity: affinity, slotCost: slotCost)
        return task(name, options: options, handler: handler)
    }

    /// Declares a task whose handler returns nothing; its runs store the output `{}`.
    /// The parameters are those of
    /// `task(_:queue:retries:timeout:scheduleTimeout:priority:concurrency:rateLimits:affinity:slotCost:handler:)`.
    public static func task<Input: Codable & Sendable>(
        _ name: String, queue: String = "default", retries: RetryPolicy = .default,
        timeout: Duration = .seconds(300), scheduleTimeout: Duration? = nil, priority: Int = 0,
        concurrency: [ConcurrencyRule] = [], rateLimits: [RateLimitRule] = [], affinity: [AffinityRule] = [],
        slotCost: Int = 1,
        handler: @escaping @Sendable (Input, TaskContext) async throws -> Void
    ) -> TaskDefinition<Input, Empty> {
        let options = TaskOptions(
            queue: queue, retries: retries, timeout: timeout, scheduleTimeout: scheduleTimeout, priority: priority,
            concurrency: concurrency, rateLimits: rateLimits, affinity: affinity, slotCost: slotCost)
        return task(name, options: options) { (input: Input, context: TaskContext) -> Empty in
            try await handler(input, context)
            return Empty()
        }
    }

    /// Declares a task with options built as a value; validated like the other overloads.
    public static func task<Input: Codable & Sendable, Output: Codable & Sendable>(
        _ name: String, options: TaskOptions,
        handler: @escaping @Sendable (Input, TaskContext) async throws -> Output
    ) -> TaskDefinition<Input, Output> {
        TaskDefinition(name: name, options: options, handler: handler)
    }
}
