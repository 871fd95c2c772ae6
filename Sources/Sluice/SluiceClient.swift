import Foundation
import SluicePostgres

/// The entry point for applications: defines tasks, enqueues runs and awaits their results.
///
/// A client owns one database connection for its calls, shared by concurrent callers, and,
/// once a result is awaited, one listener connection for `sluice_finished`. A `Worker` opens
/// connections of its own with the same connection string.
public final class SluiceClient: Sendable {
    /// The connection string the client was opened with, after resolving `DATABASE_URL`; nil
    /// means libpq's environment variables (PGHOST, PGDATABASE, ...).
    public let connectionString: String?
    /// The logger the client and its workers write to.
    public let logger: any SluiceLogger

    let connection: PostgresConnection
    private let watcher: RunWatcher

    /// Opens a client.
    ///
    /// - Parameters:
    ///   - connection: a libpq connection string or `postgresql://` URL. Nil (default) uses the
    ///     `DATABASE_URL` environment variable when it is set, and libpq's environment variables
    ///     otherwise.
    ///   - logger: where the client and its workers log; default `NoOpLogger()`.
    /// - Throws: `SluiceError` with code `connection` when the database cannot be reached.
    public init(connection: String? = nil, logger: any SluiceLogger = NoOpLogger()) async throws {
        let resolved = connection ?? ProcessInfo.processInfo.environment["DATABASE_URL"]
        connectionString = resolved
        self.logger = logger
        do {
            self.connection = try await PostgresConnection.connect(resolved, applicationName: "sluice-client")
        } catch {
            throw SluiceError.from(error)
        }
        watcher = RunWatcher(connectionString: resolved, logger: logger)
    }

    /// Closes the client's connections. Calls made afterwards throw.
    public func close() async {
        await watcher.close()
        await connection.close()
    }

    // MARK: Tasks

    /// Creates or updates the task's definition in the database (`sluice.define_task`).
    /// Workers define their tasks when they start, so call this only to enqueue runs before any
    /// worker ran.
    ///
    /// - Throws: `SluiceError` with code `SL004` naming an invalid option.
    public func define(_ task: some AnyTaskDefinition) async throws {
        try await Self.define(task, on: connection)
    }

    static func define(_ task: some AnyTaskDefinition, on connection: PostgresConnection) async throws {
        try task.validate()
        let options = task.options
        let retries = options.retries
        let flowControl = try options.flowControlJSON()
        do {
            try await connection.execute(
                """
                SELECT sluice.define_task($1, $2, $3, $4::interval, $5, $6::interval, $7, $8::interval, \
                $9::interval, $10, $11, $12::jsonb, $13::jsonb, $14::jsonb)
                """,
                [
                    task.name, options.queue, retries.maxAttempts, retries.base.intervalText, retries.factor,
                    retries.max.intervalText, retries.jitter, options.timeout.intervalText,
                    options.scheduleTimeout?.intervalText, options.priority, options.slotCost,
                    flowControl.concurrency, flowControl.rateLimits, flowControl.affinity,
                ])
        } catch {
            throw SluiceError.from(error)
        }
    }

    // MARK: Enqueueing

    /// Enqueues one run of `task` with `input` and returns its handle.
    ///
    /// - Parameters:
    ///   - options: priority, delay or start time, attempts, idempotency key and metadata;
    ///     default none.
    ///   - connection: the connection to enqueue on; pass one inside your own
    ///     `transaction { }` so that the run exists only if that transaction commits. Default
    ///     nil uses the client's connection.
    /// - Throws: `SluiceError`: `SL001` for a task that is not defined, `SL002` for an input
    ///   that is not a JSON object, is too large or contains a NUL character, `SL004` for an
    ///   invalid option.
    public func enqueue<Input, Output>(
        _ task: TaskDefinition<Input, Output>, _ input: Input, options: EnqueueOptions = .init(),
        on connection: PostgresConnection? = nil
    ) async throws -> RunHandle<Output> {
        try options.validate()
        let json = try JSONPayload.encodeObject(input, what: "input of task \(task.name)")
        let rows: PostgresRows
        do {
            rows = try await (connection ?? self.connection).queryCached(
                """
                SELECT sluice.enqueue($1, $2::jsonb, $3::jsonb, $4, $5::timestamptz, $6::interval, $7, $8)
                """,
                [
                    task.name, json, options.metadata, options.priority, options.runAt,
                    options.delay?.intervalText, options.maxAttempts, options.idempotencyKey,
                ])
        } catch {
            throw SluiceError.from(error)
        }
        return RunHandle(id: try rows[0].decode(Int64.self, at: 0), client: self)
    }

    /// Enqueues one run per input with shared options in one statement, and returns the handles
    /// in input order.
    ///
    /// - Parameters:
    ///   - idempotencyKeys: one key (or nil) per input; default nil. `options.idempotencyKey`
    ///     is ignored here.
    ///   - connection: as for `enqueue`; default nil uses the client's connection.
    public func enqueueMany<Input, Output>(
        _ task: TaskDefinition<Input, Output>, _ inputs: [Input], options: EnqueueOptions = .init(),
        idempotencyKeys: [String?]? = nil, on connection: PostgresConnection? = nil
    ) async throws -> [RunHandle<Output>] {
        try options.validate()
        if let idempotencyKeys, idempotencyKeys.count != inputs.count {
            throw SluiceError(
                code: .invalidOption,
                message: "\(idempotencyKeys.count) idempotency keys for \(inputs.count) inputs; pass one key "
                    + "(or nil) per input")
        }
        let documents = try inputs.enumerated().map { index, input in
            try JSONPayload.encodeObject(input, what: "input \(index + 1) of task \(task.name)")
        }
        let rows: PostgresRows
        do {
            rows = try await (connection ?? self.connection).queryCached(
                """
                SELECT sluice.enqueue_many($1, $2::jsonb[], $3::jsonb, $4, $5::timestamptz, $6::interval, $7, \
                $8::text[])
                """,
                [
                    task.name, documents, options.metadata, options.priority, options.runAt,
                    options.delay?.intervalText, options.maxAttempts, idempotencyKeys,
                ])
        } catch {
            throw SluiceError.from(error)
        }
        return try rows[0].decode([Int64].self, at: 0).map { RunHandle(id: $0, client: self) }
    }

    /// Returns a handle for an existing run id, to await or cancel it.
    public func handle<Input, Output>(for runID: Int64, of task: TaskDefinition<Input, Output>) -> RunHandle<Output> {
        RunHandle(id: runID, client: self)
    }

    // MARK: Runs

    /// Returns a snapshot of run `id`.
    ///
    /// - Throws: `SluiceError` with code `SL003` when no run has that id.
    public func runInfo(_ id: Int64) async throws -> RunInfo {
        let rows: PostgresRows
        do {
            rows = try await connection.queryCached(
                """
                SELECT task, queue, status::text, attempt, max_attempts, priority, created_at, run_at, started_at,
                       finished_at, input, metadata, output, error
                FROM sluice.runs WHERE id = $1
                """,
                [id])
        } catch {
            throw SluiceError.from(error, runID: id)
        }
        guard let row = rows.first else {
            throw SluiceError(
                code: .runNotFound,
                message: "run \(id) does not exist; run ids are returned by enqueue, and finished runs are "
                    + "removed after the retention period",
                runID: id)
        }
        return RunInfo(
            id: id, task: try row.decode(String.self, at: 0), queue: try row.decode(String.self, at: 1),
            status: try RunStatus(databaseText: try row.decode(String.self, at: 2)),
            attempt: try row.decode(Int.self, at: 3), maxAttempts: try row.decode(Int.self, at: 4),
            priority: try row.decode(Int.self, at: 5), createdAt: try row.decode(Date.self, at: 6),
            runAt: try row.decode(Date.self, at: 7), startedAt: try row.decode(Date?.self, at: 8),
            finishedAt: try row.decode(Date?.self, at: 9), input: try row.decode(PostgresJSON.self, at: 10),
            metadata: try row.decode(PostgresJSON.self, at: 11), output: try row.decode(PostgresJSON?.self, at: 12),
            error: try row.decode(PostgresJSON?.self, at: 13))
    }

    /// Cancels run `runID` unless it already finished (`sluice.cancel`); a running attempt's
    /// handler is cancelled by its worker. Returns false when the run had already finished.
    ///
    /// - Throws: `SluiceError` with code `SL003` for an unknown run. When the run changed state
    ///   during each of the cancel's ten passes, a `SluiceError` with code `database` and
    ///   SQLSTATE 40001 in its message: nothing was cancelled, so call it again.
    @discardableResult
    public func cancel(runID: Int64, reason: String? = nil) async throws -> Bool {
        do {
            let rows = try await connection.query(
                "SELECT sluice.cancel($1, $2)", [runID, reason.map(JSONPayload.escapingNUL)])
            return try rows[0].decode(Bool.self, at: 0)
        } catch {
            throw SluiceError.from(error, runID: runID)
        }
    }

    /// Waits until run `runID` is final and returns its snapshot; see `RunHandle.result`.
    func waitUntilFinished(runID: Int64, timeout: Duration?) async throws -> RunInfo {
        let (token, signals) = try await watcher.subscribe(runID: runID)
        do {
            let info = try await waitUntilFinished(runID: runID, signals: signals, timeout: timeout)
            await watcher.unsubscribe(runID: runID, token: token)
            return info
        } catch {
            await watcher.unsubscribe(runID: runID, token: token)
            throw error
        }
    }

    private func waitUntilFinished(
        runID: Int64, signals: AsyncStream<Void>, timeout: Duration?
    ) async throws -> RunInfo {
        do {
            let rows = try await connection.queryCached("SELECT sluice.watch_run($1)::text", [runID])
            if try RunStatus(databaseText: try rows[0].decode(String.self, at: 0)).isFinal {
                return try await runInfo(runID)
            }
        } catch {
            throw SluiceError.from(error, runID: runID)
        }
        return try await withThrowingTaskGroup(of: RunInfo.self) { group in
            group.addTask {
                for await _ in signals {
                    let info = try await self.runInfo(runID)
                    if info.status.isFinal {
                        return info
                    }
                }
                try Task.checkCancellation()
                throw SluiceError(
                    code: .connection, message: "the client was closed while waiting for run \(runID)",
                    runID: runID)
            }
            if let timeout {
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw SluiceError(
                        code: .timedOut,
                        message: "run \(runID) did not finish within \(timeout); it keeps running, so wait again "
                            + "or cancel it",
                        runID: runID)
                }
            }
            let info = try await group.next()!
            group.cancelAll()
            return info
        }
    }
}
