import Dispatch
import Foundation
import SluicePostgres

/// Executes runs of a set of tasks, in this process, until shut down.
///
/// ```swift
/// try await Worker(client: client, name: "mailer", slots: 20, tasks: [sendReceipt]).run()
/// ```
///
/// A worker defines its tasks, registers a new incarnation, and claims runs in batches up to
/// its free slots when `sluice_ready` names one of its queues, when a slot frees after a full
/// claim, and every `pollInterval` in case a notification was missed. Handlers run
/// concurrently as Swift tasks and are cancelled when their run is cancelled, their lease is
/// lost, their deadline passes or the drain timeout passes. See `run()` for shutdown.
public final class Worker: Sendable {
    /// The client whose connection string and logger the worker uses.
    public let client: SluiceClient
    /// The worker name shown in `sluice.workers`; every incarnation shares it.
    public let name: String
    /// The number of handlers that may execute at once.
    public let slots: Int
    /// The tasks the worker executes.
    public let tasks: [any AnyTaskDefinition]
    /// The queues to claim from, or nil for the queues of `tasks`.
    public let queues: [String]?
    /// The worker's current labels, matched by the affinity rules of tasks; `setLabels(_:)`
    /// changes them.
    public var labels: [String: LabelValue] {
        currentLabels.withValue { $0 }
    }
    /// How long the worker may go without a heartbeat before the database takes its runs back.
    public let leaseTimeout: Duration
    /// How long a shutdown waits for executing handlers before cancelling them.
    public let drainTimeout: Duration
    /// The interval of the fallback claim when no notification arrived.
    public let pollInterval: Duration
    /// Whether `run()` installs SIGINT and SIGTERM handlers that start a shutdown.
    public let handlesSignals: Bool
    /// The number of connections that carry the worker's claims and reports. With two, the
    /// database records one batch of outcomes and claims more runs while it processes the other
    /// batch. That can help a lone worker with many slots when the database has idle cores (on
    /// two cores the gain was within the measurement spread), and it slowed several worker
    /// processes sharing a two-core database by a quarter. Claims of one worker take turns in
    /// the database, so the two lanes overlap a claim only with the other's reports. The
    /// worker opens one more connection to listen for notifications.
    public let connections: Int

    let logger: any SluiceLogger
    private let control = WorkerControl()
    private let currentLabels: LockedValue<[String: LabelValue]>
    private let activeRuntime = LockedValue<WorkerRuntime?>(nil)

    /// Creates a worker; nothing connects until `run()`.
    ///
    /// - Parameters:
    ///   - client: the client whose connection string is used for the worker's own connections.
    ///   - name: the worker name; default `"worker"`.
    ///   - slots: handlers that may execute at once, 1 to 100000; default 10.
    ///   - tasks: the tasks to execute; at least one, with distinct names.
    ///   - queues: the queues to claim from; default nil (the queues of `tasks`).
    ///   - labels: labels for affinity rules, string or integer values, such as
    ///     `["gpu": "a100", "memory_gb": 80]`; default none.
    ///   - leaseTimeout: 1 s to 1 day; default 30 s. The worker heartbeats every third of it.
    ///   - drainTimeout: how long a shutdown waits for handlers; default 30 s.
    ///   - pollInterval: the fallback claim interval; default 2 s.
    ///   - handleSignals: install SIGINT and SIGTERM handlers in `run()`; default true.
    ///   - connections: connections for claims and reports, 1 to 8; default 1.
    ///   - logger: where the worker logs; default nil (the client's logger).
    public init(
        client: SluiceClient, name: String = "worker", slots: Int = 10, tasks: [any AnyTaskDefinition],
        queues: [String]? = nil, labels: [String: LabelValue] = [:], leaseTimeout: Duration = .seconds(30),
        drainTimeout: Duration = .seconds(30), pollInterval: Duration = .seconds(2), handleSignals: Bool = true,
        connections: Int = 1, logger: (any SluiceLogger)? = nil
    ) {
        self.client = client
        self.name = name
        self.slots = slots
        self.tasks = tasks
        self.queues = queues
        currentLabels = LockedValue(labels)
        self.leaseTimeout = leaseTimeout
        self.drainTimeout = drainTimeout
        self.pollInterval = pollInterval
        self.handlesSignals = handleSignals
        self.connections = connections
        self.logger = logger ?? client.logger
    }

    /// Runs until shut down, then returns.
    ///
    /// A shutdown starts on SIGINT or SIGTERM (when `handleSignals` is true), on `shutdown()`,
    /// or when the Swift task calling `run()` is cancelled. The worker then stops claiming,
    /// waits up to `drainTimeout` for executing handlers, cancels the rest, sends the pending
    /// reports and stops its incarnation with `sluice.stop_worker`, which requeues any run it
    /// still held. A second signal or `shutdown()` cancels the handlers at once.
    ///
    /// - Throws: `SluiceError` when the options are invalid or the first registration fails;
    ///   later database errors are logged and retried.
    public func run() async throws {
        try validate()
        let events = control.begin()
        let signalSources = handlesSignals ? installSignalHandlers() : []
        defer {
            for source in signalSources {
                source.cancel()
            }
        }
        let runtime = WorkerRuntime(worker: self, events: events)
        activeRuntime.withValue { $0 = runtime }
        defer {
            activeRuntime.withValue { $0 = nil }
        }
        let loop = Task { try await runtime.run() }
        try await withTaskCancellationHandler {
            try await loop.value
        } onCancel: {
            control.send(.drainRequested)
        }
        control.end()
    }

    /// Replaces the worker's labels. While the worker runs, the database stores them at once
    /// (`sluice.set_worker_labels`) and the next claim routes by them; otherwise the next
    /// `run()` registers with them.
    ///
    /// - Throws: `SluiceError` with code `SL002` when the labels cannot be stored (for example
    ///   a string with a NUL character), or `connection` when the database cannot be reached.
    ///   The new labels are kept either way and sent again when the worker registers.
    public func setLabels(_ labels: [String: LabelValue]) async throws {
        currentLabels.withValue { $0 = labels }
        if let runtime = activeRuntime.withValue({ $0 }) {
            try await runtime.storeLabels()
        }
    }

    /// Starts a graceful shutdown of a running worker; a second call cancels its handlers at
    /// once. Does nothing when the worker is not running.
    public func shutdown() {
        control.send(.drainRequested)
    }

    private func validate() throws {
        guard !tasks.isEmpty else {
            throw SluiceError(code: .invalidOption, message: "invalid tasks: a worker executes at least one task")
        }
        try Validation.checkName("worker name", name)
        try Validation.check("slots", slots, in: 1...100_000)
        try Validation.check("leaseTimeout", leaseTimeout, in: .seconds(1) ... .seconds(86_400))
        try Validation.check("drainTimeout", drainTimeout, in: .zero ... .seconds(86_400))
        try Validation.check("pollInterval", pollInterval, in: .milliseconds(10) ... .seconds(3600))
        try Validation.check("connections", connections, in: 1...8)
        var names = Set<String>()
        for task in tasks {
            try task.validate()
            if !names.insert(task.name).inserted {
                throw SluiceError(
                    code: .invalidOption, message: "task \(task.name) is given twice; pass each task once")
            }
        }
    }

    /// Ignores SIGINT and SIGTERM's default action and turns them into shutdown requests.
    private func installSignalHandlers() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [logger, control] in
                logger.info("signal received; shutting down", ["signal": number == SIGINT ? "SIGINT" : "SIGTERM"])
                control.send(.drainRequested)
            }
            source.setCancelHandler {
                signal(number, SIG_DFL)
            }
            source.resume()
            return source
        }
    }
}

/// The event stream of the current `run()`, reachable from `shutdown()` and signal handlers.
final class WorkerControl: Sendable {
    private let continuation = LockedValue<AsyncStream<WorkerEvent>.Continuation?>(nil)

    /// Creates the event stream of a new run.
    func begin() -> AsyncStream<WorkerEvent> {
        let (stream, continuation) = AsyncStream<WorkerEvent>.makeStream()
        self.continuation.withValue { $0 = continuation }
        return stream
    }

    /// Delivers `event` to the current run, if any.
    func send(_ event: WorkerEvent) {
        _ = continuation.withValue { $0?.yield(event) }
    }

    /// Detaches the finished run.
    func end() {
        continuation.withValue { $0 = nil }
    }
}

/// A value guarded by a lock.
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `value` is read and written only while `lock` is held.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withValue<Result>(_ body: (inout Value) -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
