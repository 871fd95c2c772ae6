import Foundation
import SluicePostgres

/// The I/O side of one `Worker.run()`: feeds events to a `WorkerState` and performs the actions
/// it returns. Database calls, handlers and timers run as separate Swift tasks that report back
/// through the event stream. The loop waits on the database only to register and to stop.
actor WorkerRuntime {
    private let worker: Worker
    private let events: AsyncStream<WorkerEvent>
    private let continuation: AsyncStream<WorkerEvent>.Continuation
    private let logger: any SluiceLogger
    private let executors: [String: TaskExecutor]
    private let taskTimeouts: [String: Duration]

    private var state: WorkerState
    /// One connection per lane of the state; the first also registers, heartbeats and stops.
    private var lanes: [WorkerDatabase] = []
    private var database: WorkerDatabase? { lanes.first }
    private var listener: PostgresListener?
    private var workerID: UUID?
    private var handlers: [Int64: Handler] = [:]
    private let finishedAttempts = FinishedAttempts()
    /// One timer for every handler's deadline, set for the earliest of them. A timer task per
    /// run cost the worker a dispatch timer and a task for each run it started.
    private var deadlineTimer: (due: ContinuousClock.Instant, task: Task<Void, Never>)?
    private var backgroundTasks: [Task<Void, Never>] = []
    private var reportBackoff = ReconnectBackoff(policy: ReconnectPolicy(maximumAttempts: nil))

    private struct Handler {
        var attempt: Int
        var task: Task<Void, Never>
        /// When the attempt's execution timeout ends; nil once the state received `deadlinePassed`.
        var deadline: ContinuousClock.Instant?
        var cancellation: CancellationBox
    }

    init(worker: Worker, events: AsyncStream<WorkerEvent>) {
        self.worker = worker
        self.events = events
        logger = worker.logger
        // The control's continuation is the only other producer; events from this runtime's
        // tasks go through a second stream merged below.
        let (merged, continuation) = AsyncStream<WorkerEvent>.makeStream()
        self.continuation = continuation
        self.mergedEvents = merged
        executors = Dictionary(uniqueKeysWithValues: worker.tasks.map { ($0.name, $0.executor) })
        taskTimeouts = Dictionary(uniqueKeysWithValues: worker.tasks.map { ($0.name, $0.options.timeout) })
        let queues = worker.queues ?? worker.tasks.map(\.options.queue)
        state = WorkerState(slots: worker.slots, queues: Set(queues), lanes: worker.connections, waitsInServer: true)
        serverWait = min(worker.pollInterval, worker.leaseTimeout / 4, .milliseconds(500))
    }

    private let mergedEvents: AsyncStream<WorkerEvent>
    /// How long an idle worker's claim waits in the server. A shutdown waits for it to return,
    /// and so does a heartbeat on its lane, so it stays well within the lease timeout.
    private let serverWait: Duration

    /// Starts the worker and processes events until it stops.
    func run() async throws {
        // Control events (shutdown, signals) join the runtime's own events.
        let forward = Task { [events, continuation] in
            for await event in events {
                continuation.yield(event)
            }
        }
        defer {
            forward.cancel()
        }
        try await start()
        for await event in mergedEvents {
            // A call sent by an earlier incarnation may fail with SL005 after the worker has
            // registered again; the current incarnation is alive.
            if case .workerExpired(let expired) = event, expired != workerID {
                continue
            }
            var actions: [WorkerState.Action] = []
            var invocations: [Int64: TaskExecutor.Invocation] = [:]
            if case .exchanged(_, _, _, _, let decoded) = event {
                invocations = decoded
            }
            if case .attemptsFinished = event {
                for finished in finishedAttempts.takeAll() {
                    let event = WorkerEvent.finished(
                        runID: finished.runID, attempt: finished.attempt, outcome: finished.outcome)
                    observe(event)
                    actions += state.apply(event)
                }
            } else {
                observe(event)
                actions = state.apply(event)
            }
            if await perform(actions, invocations: invocations) {
                break
            }
        }
    }

    /// Keeps the runtime's own bookkeeping in step with an event before the state sees it.
    private func observe(_ event: WorkerEvent) {
        if case .finished(let runID, let attempt, _) = event, handlers[runID]?.attempt == attempt {
            handlers.removeValue(forKey: runID)
        }
        switch event.reportsArrived {
        case true?:
            reportBackoff.recordSuccess()
        case false?:
            let delay: Duration
            if case .retry(let next) = reportBackoff.recordFailure() {
                delay = next
            } else {
                delay = .seconds(2)
            }
            Task { [continuation] in
                try? await Task.sleep(for: delay)
                continuation.yield(.reportRetryDue)
            }
        case nil:
            break
        }
    }

    // MARK: Start and stop

    private func start() async throws {
        do {
            for _ in 0..<worker.connections {
                let connection = try await PostgresConnection.connect(
                    worker.client.connectionString, applicationName: "sluice-worker \(worker.name)")
                lanes.append(WorkerDatabase(connection: connection))
            }
            for task in worker.tasks {
                try await SluiceClient.define(task, on: lanes[0].connection)
            }
            listener = try await PostgresListener.start(
                worker.client.connectionString, channels: ["sluice_ready", "sluice_cancel"],
                applicationName: "sluice-worker \(worker.name)")
        } catch {
            await closeConnections()
            throw SluiceError.from(error)
        }
        do {
            try await register(isFirst: true)
        } catch {
            await closeConnections()
            throw error
        }
        consumeNotifications()
        startTimers()
        logger.info(
            "worker started",
            [
                "worker": worker.name, "worker_id": workerID?.uuidString.lowercased() ?? "", "slots": String(worker.slots),
                "connections": String(worker.connections),
                "tasks": worker.tasks.map(\.name).joined(separator: ","),
            ])
        continuation.yield(.registered)
    }

    /// Registers a new incarnation, retrying with backoff; the first registration throws on an
    /// error that is not a connection error.
    private func register(isFirst: Bool) async throws {
        guard let database else {
            return
        }
        let labels = worker.labels
        var backoff = ReconnectBackoff(policy: ReconnectPolicy(maximumAttempts: nil))
        while true {
            do {
                workerID = try await database.register(
                    name: worker.name, tasks: worker.tasks.map(\.name), slots: worker.slots, queues: worker.queues,
                    labels: try PostgresJSON(encoding: labels), leaseTimeout: worker.leaseTimeout)
                // setLabels may have run while the registration was in flight.
                if worker.labels != labels {
                    try? await storeLabels()
                }
                return
            } catch {
                let sluiceError = SluiceError.from(error)
                if isFirst && sluiceError.code != .connection {
                    throw sluiceError
                }
                guard case .retry(let delay) = backoff.recordFailure() else {
                    throw sluiceError
                }
                logger.error(
                    "worker registration failed; retrying",
                    ["worker": worker.name, "error": sluiceError.description, "retry_in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// Stores the worker's current labels on its incarnation; does nothing before the first
    /// registration, which sends them itself.
    func storeLabels() async throws {
        guard let database, let workerID else {
            return
        }
        do {
            try await database.connection.execute(
                "SELECT sluice.set_worker_labels($1, $2::jsonb)", [workerID, try PostgresJSON(encoding: worker.labels)])
        } catch {
            throw SluiceError.from(error)
        }
        logger.debug("worker labels changed", ["worker": worker.name, "worker_id": workerID.uuidString.lowercased()])
    }

    /// Stops the incarnation, closes the connections and cancels the timers.
    private func stop() async {
        for task in backgroundTasks {
            task.cancel()
        }
        deadlineTimer?.task.cancel()
        deadlineTimer = nil
        if let database, let workerID {
            do {
                let rows = try await database.connection.query("SELECT sluice.stop_worker($1, 'stopped')", [workerID])
                let released = (try? rows[0].decode(Int.self, at: 0)) ?? 0
                logger.info(
                    "worker stopped",
                    ["worker": worker.name, "worker_id": workerID.uuidString.lowercased(), "released_runs": String(released)])
            } catch {
                logger.warning(
                    "stopping the worker incarnation failed; its lease expires instead",
                    ["worker": worker.name, "worker_id": workerID.uuidString.lowercased(), "error": SluiceError.from(error).description])
            }
        }
        await closeConnections()
        continuation.finish()
    }

    private func closeConnections() async {
        listener?.close()
        for lane in lanes {
            await lane.connection.close()
        }
    }

    // MARK: Event sources

    private func consumeNotifications() {
        guard let listener else {
            return
        }
        backgroundTasks.append(
            Task { [continuation] in
                for await event in listener.notifications {
                    switch event {
                    case .notification(let channel, let payload, _):
                        if channel == "sluice_ready" {
                            continuation.yield(.notified(queue: payload))
                        } else if channel == "sluice_cancel", let runID = Int64(payload) {
                            continuation.yield(.cancelNotified(runID: runID))
                        }
                    case .reconnected:
                        continuation.yield(.listenerReconnected)
                    }
                }
            })
    }

    private func startTimers() {
        let pollInterval = worker.pollInterval
        let heartbeatInterval = worker.leaseTimeout / 3
        backgroundTasks.append(Self.repeating(every: pollInterval, continuation, .pollTimerFired))
        backgroundTasks.append(Self.repeating(every: heartbeatInterval, continuation, .heartbeatDue))
    }

    private static func repeating(
        every interval: Duration, _ continuation: AsyncStream<WorkerEvent>.Continuation, _ event: WorkerEvent
    ) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                continuation.yield(event)
            }
        }
    }

    // MARK: Actions

    /// Performs `actions`; returns true when the worker stopped. `invocations` are the handler
    /// calls, by run id, of the runs that `actions` start.
    private func perform(
        _ actions: [WorkerState.Action], invocations: [Int64: TaskExecutor.Invocation] = [:]
    ) async -> Bool {
        for action in actions {
            switch action {
            case .register:
                await reregister()
            case .send(let exchange):
                send(exchange)
            case .scheduleFlush:
                Task { [continuation] in
                    try? await Task.sleep(for: WorkerState.coalescingDelay)
                    continuation.yield(.flushDue)
                }
            case .start(let run):
                startHandler(run, invocation: invocations[run.runID])
            case .heartbeat(let runIDs):
                sendHeartbeat(runIDs)
            case .cancel(let runID, let reason):
                cancelHandler(runID, reason: reason)
            case .startDrainTimer:
                logger.info(
                    "worker draining",
                    ["worker": worker.name, "executing": String(state.executingCount),
                     "drain_timeout": "\(worker.drainTimeout)"])
                let drainTimeout = worker.drainTimeout
                backgroundTasks.append(
                    Task { [continuation] in
                        try? await Task.sleep(for: drainTimeout)
                        continuation.yield(.drainTimedOut)
                    })
            case .stop:
                await stop()
                return true
            }
        }
        return false
    }

    private func reregister() async {
        let previous = workerID?.uuidString.lowercased() ?? ""
        logger.warning(
            "worker incarnation was stopped by the database; cancelled its handlers and registering again",
            ["worker": worker.name, "worker_id": previous])
        try? await register(isFirst: false)
        logger.info(
            "worker registered again",
            ["worker": worker.name, "worker_id": workerID?.uuidString.lowercased() ?? "", "previous_worker_id": previous])
        continuation.yield(.registered)
    }

    /// Starts the handler of `run` with `invocation`, the handler call whose input the exchange
    /// decoded with the claim. Without one, the input is decoded here, on the actor.
    private func startHandler(_ run: WorkerState.ClaimedRun, invocation: TaskExecutor.Invocation?) {
        let cancellation = CancellationBox()
        let context = TaskContext(
            runID: run.runID, taskName: run.task, attempt: run.attempt, maxAttempts: run.maxAttempts,
            metadata: PostgresJSON(run.metadata), deadline: run.deadline, logger: logger,
            cancellation: cancellation)
        let invocation = invocation ?? executors[run.task]?.prepare([run.input])[0]
        let timeout = taskTimeouts[run.task] ?? run.timeLeft
        let logger = logger
        logger.debug("run started", ["run_id": String(run.runID), "task": run.task, "attempt": String(run.attempt)])
        let task = Task { [continuation, finishedAttempts] in
            let outcome: WorkerState.Outcome
            if let invocation {
                outcome = await Self.execute(invocation, context: context, timeout: timeout)
            } else {
                outcome = .failed(message: "worker has no handler for task \(run.task)", retryable: true)
            }
            let finished = FinishedAttempts.Attempt(runID: run.runID, attempt: run.attempt, outcome: outcome)
            if finishedAttempts.append(finished) {
                continuation.yield(.attemptsFinished)
            }
        }
        let deadline = ContinuousClock.now + run.timeLeft
        handlers[run.runID] = Handler(attempt: run.attempt, task: task, deadline: deadline, cancellation: cancellation)
        scheduleDeadlineTimer(at: deadline)
    }

    /// Sets the deadline timer for `due` unless it already fires earlier.
    private func scheduleDeadlineTimer(at due: ContinuousClock.Instant) {
        if let current = deadlineTimer, current.due <= due {
            return
        }
        deadlineTimer?.task.cancel()
        let task = Task { [weak self] in
            do {
                try await Task.sleep(until: due, clock: .continuous)
            } catch {
                return
            }
            await self?.deadlineTimerFired()
        }
        deadlineTimer = (due, task)
    }

    /// Sends `deadlinePassed` for every handler whose deadline has passed, then sets the timer
    /// for the earliest deadline left.
    private func deadlineTimerFired() {
        deadlineTimer = nil
        let now = ContinuousClock.now
        var next: ContinuousClock.Instant?
        for (runID, handler) in handlers {
            guard let deadline = handler.deadline else {
                continue
            }
            if deadline <= now {
                handlers[runID]?.deadline = nil
                continuation.yield(.deadlinePassed(runID: runID, attempt: handler.attempt))
            } else if next.map({ deadline < $0 }) ?? true {
                next = deadline
            }
        }
        if let next {
            scheduleDeadlineTimer(at: next)
        }
    }

    /// Runs a handler and turns its result or error into an outcome.
    private static func execute(
        _ invocation: TaskExecutor.Invocation, context: TaskContext, timeout: Duration
    ) async -> WorkerState.Outcome {
        do {
            return .succeeded(output: try await invocation.execute(context))
        } catch {
            switch context.cancellationReason {
            case .deadlinePassed:
                return .failed(message: "attempt timed out after \(timeout): \(error)", retryable: true)
            case .some(let reason):
                return .failed(message: "attempt cancelled (\(reason)): \(error)", retryable: true)
            case nil:
                return .failed(message: String(describing: error), retryable: !(error is any NonRetryableError))
            }
        }
    }

    private func cancelHandler(_ runID: Int64, reason: CancellationReason) {
        guard let handler = handlers[runID] else {
            return
        }
        handler.cancellation.record(reason)
        handler.task.cancel()
        handlers[runID]?.deadline = nil
        let level: LogLevel = reason == .cancelledByUser ? .info : .warning
        logger.log(
            level: level, message: "cancelling handler",
            metadata: ["run_id": String(runID), "attempt": String(handler.attempt), "reason": reason.description])
    }

    private func sendHeartbeat(_ runIDs: [Int64]) {
        guard let database, let workerID else {
            continuation.yield(.heartbeatFailed)
            return
        }
        let logger = logger
        Task { [continuation] in
            do {
                let rows = try await database.connection.queryCached(
                    "SELECT id FROM sluice.heartbeat($1, $2::bigint[]) AS id", [workerID, runIDs])
                let lost = try rows.map { try $0.decode(Int64.self, at: 0) }
                for runID in lost {
                    logger.warning("lease lost; the run is no longer held by this worker", ["run_id": String(runID)])
                }
                continuation.yield(.heartbeatSucceeded(lostRunIDs: lost))
            } catch {
                continuation.yield(.heartbeatFailed)
                Self.handleDatabaseError(
                    error, during: "heartbeat", workerID: workerID, logger: logger, continuation: continuation)
            }
        }
    }

    /// Logs a database error; SL005 means incarnation `workerID` was stopped and must register
    /// again.
    private static func handleDatabaseError(
        _ error: any Error, during operation: String, workerID: UUID, logger: any SluiceLogger,
        continuation: AsyncStream<WorkerEvent>.Continuation
    ) {
        let sluiceError = SluiceError.from(error)
        if sluiceError.code == .workerNotRegistered {
            continuation.yield(.workerExpired(workerID))
            return
        }
        logger.error("\(operation) failed", ["error": sluiceError.description])
    }

    // MARK: Reports and claims

    /// Sends the exchange's reports and claim in one pipeline on its lane, so a busy worker
    /// reports and claims in one round trip. Each statement has its own sync point: a failed
    /// claim does not undo the reports.
    private func send(_ exchange: WorkerState.Exchange) {
        let lane = exchange.lane
        guard lane < lanes.count, let workerID else {
            continuation.yield(.exchangeFailed(exchange))
            return
        }
        let database = lanes[lane]
        let reportStatements = WorkerDatabase.reportStatements(exchange.reports)
        var statements = reportStatements.map { (sql: $0.sql, parameters: $0.parameters) }
        if let claimCount = exchange.claim {
            if exchange.waits {
                statements.append((WorkerDatabase.claimOrWaitSQL, [workerID, claimCount, serverWait.intervalText]))
            } else {
                statements.append((WorkerDatabase.claimSQL, [workerID, claimCount]))
            }
        }
        let logger = logger
        Task { [continuation, executors] in
            let results: [Result<PostgresRows, PostgresError>]
            do {
                results = try await database.connection.pipelineResultsCached(statements)
            } catch {
                logger.error("sending reports and claim failed", ["error": SluiceError.from(error).description])
                continuation.yield(.exchangeFailed(exchange))
                return
            }
            var reportsLost = false
            for (index, statement) in reportStatements.enumerated() {
                let handled = await Self.handleReportResult(
                    results[index], reports: statement.reports, database: database, logger: logger)
                reportsLost = reportsLost || !handled
            }
            var claim: WorkerState.ClaimResult?
            var invocations: [Int64: TaskExecutor.Invocation] = [:]
            if exchange.claim != nil {
                switch results[reportStatements.count] {
                case .success(let rows):
                    do {
                        let runs = try WorkerDatabase.claimedRuns(rows)
                        claim = .claimed(runs)
                        invocations = Self.prepareInvocations(runs, executors: executors)
                    } catch {
                        logger.error("claim returned rows that do not decode", ["error": "\(error)"])
                        claim = .failed
                    }
                case .failure(let error):
                    claim = .failed
                    Self.handleDatabaseError(
                        error, during: "claim", workerID: workerID, logger: logger, continuation: continuation)
                }
            }
            continuation.yield(.exchanged(
                lane: lane, recorded: reportsLost ? 0 : exchange.reports.count, unsent: reportsLost ? exchange.reports : [],
                claim: claim, invocations: invocations))
        }
    }

    /// Decodes the inputs of claimed runs, one batch per task, and returns the handler call of
    /// each run by run id. Runs of a task the worker has no handler for get none. It runs in the
    /// exchange's task, so that large inputs do not hold up the event loop.
    private static func prepareInvocations(
        _ runs: [WorkerState.ClaimedRun], executors: [String: TaskExecutor]
    ) -> [Int64: TaskExecutor.Invocation] {
        var runsByTask: [String: [WorkerState.ClaimedRun]] = [:]
        for run in runs {
            runsByTask[run.task, default: []].append(run)
        }
        var invocations: [Int64: TaskExecutor.Invocation] = [:]
        invocations.reserveCapacity(runs.count)
        for (task, taskRuns) in runsByTask {
            guard let executor = executors[task] else {
                continue
            }
            for (run, invocation) in zip(taskRuns, executor.prepare(taskRuns.map(\.input))) {
                invocations[run.runID] = invocation
            }
        }
        return invocations
    }

    /// Logs the outcome of a `complete` or `fail` statement. Returns false when the reports must
    /// be sent again because the connection failed.
    private static func handleReportResult(
        _ result: Result<PostgresRows, PostgresError>, reports: [WorkerState.Report], database: WorkerDatabase,
        logger: any SluiceLogger
    ) async -> Bool {
        switch result {
        case .success(let rows):
            logReportRows(rows, reports: reports, logger: logger)
            return true
        case .failure(let error) where error.isConnectionError:
            logger.error("sending reports failed; retrying", ["error": error.description])
            return false
        case .failure(let error):
            // A server error rejects the whole batch, for example one output over the size
            // limit, so send each report alone and fail the runs whose output is rejected.
            logger.error("a report batch was rejected; sending each report alone", ["error": error.description])
            for report in reports {
                await sendAlone(report, database: database, logger: logger)
            }
            return true
        }
    }

    private static func sendAlone(_ report: WorkerState.Report, database: WorkerDatabase, logger: any SluiceLogger) async {
        let statement = WorkerDatabase.reportStatements([report])[0]
        do {
            let rows = try await database.connection.query(statement.sql, statement.parameters)
            logReportRows(rows, reports: [report], logger: logger)
        } catch let error as PostgresError where !error.isConnectionError {
            guard case .succeeded = report.outcome else {
                logger.error(
                    "recording a failed attempt was rejected; the lease expires instead",
                    ["run_id": String(report.runID), "error": error.description])
                return
            }
            logger.error(
                "the output was rejected; failing the run", ["run_id": String(report.runID), "error": error.description])
            let failure = WorkerState.Report(
                runID: report.runID, attempt: report.attempt,
                outcome: .failed(message: "the output could not be stored: \(error.description)", retryable: false))
            await sendAlone(failure, database: database, logger: logger)
        } catch {
            logger.error(
                "sending a report failed; the lease expires instead",
                ["run_id": String(report.runID), "error": SluiceError.from(error).description])
        }
    }

    private static func logReportRows(_ rows: PostgresRows, reports: [WorkerState.Report], logger: any SluiceLogger) {
        if rows.columnNames.count == 1 {
            // Accepted completions are logged at debug level and rejected ones at info level.
            guard logger.isEnabled(.debug) || logger.isEnabled(.info) else {
                return
            }
            let accepted = Set(rows.compactMap { try? $0.decode(Int64.self, at: 0) })
            for report in reports {
                let metadata = ["run_id": String(report.runID), "attempt": String(report.attempt)]
                if accepted.contains(report.runID) {
                    logger.debug("run succeeded", metadata)
                } else {
                    logger.info("completion rejected: the attempt no longer holds the run", metadata)
                }
            }
            return
        }
        var statusByRunID: [Int64: String] = [:]
        for row in rows {
            if let runID = try? row.decode(Int64.self, at: 0), let status = try? row.decode(String.self, at: 1) {
                statusByRunID[runID] = status
            }
        }
        for report in reports {
            guard case .failed(let message, let retryable) = report.outcome else {
                continue
            }
            var metadata = [
                "run_id": String(report.runID), "attempt": String(report.attempt), "error": message,
                "retryable": String(retryable),
            ]
            switch statusByRunID[report.runID] {
            case nil:
                logger.info("failure rejected: the attempt no longer holds the run", metadata)
            case "failed":
                logger.warning("run failed", metadata)
            case let status?:
                metadata["status"] = status
                logger.info("attempt failed; the run will be retried", metadata)
            }
        }
    }
}
