import Foundation
import Sluice
import SluicePostgres

/// The coordinator daemon: drives Sluice's time-driven work by calling `sluice.tick()` when
/// something is due and `sluice.maintain()` about once a minute.
///
/// Several coordinators may run against one database; one leads through a session-level
/// advisory lock and the others retry the lock every `leadershipRetryInterval`. The leader
/// runs every call on the connection that holds the lock, so a leader whose session is gone
/// cannot act: its next call fails, and it drops the leadership and becomes a candidate.
///
/// ```swift
/// let coordinator = Coordinator(connectionString: "postgresql:///app", logger: StandardErrorLogger())
/// try await coordinator.run()   // until the task is cancelled
/// ```
public final class Coordinator: Sendable {
    /// The advisory lock key pair of the leadership lock, in `pg_try_advisory_lock(int, int)`
    /// form: the first key is "sluc" in ASCII, the second names the coordinator role.
    /// Advisory locks are per database, so coordinators of different databases on one server
    /// do not compete.
    public static let lockKeys: (Int32, Int32) = (0x736C_7563, 1)

    /// The libpq connection string, or nil for libpq's environment variables.
    public let connectionString: String?
    /// Timing and batch settings.
    public let options: CoordinatorOptions

    private let logger: any SluiceLogger
    private let wakeSignal = WakeSignal()
    private let status = LeadershipStatus()

    /// Creates a coordinator; nothing connects until `run()`.
    ///
    /// - Parameters:
    ///   - connectionString: a libpq keyword/value string or `postgresql://` URL; nil uses
    ///     libpq's environment variables (PGHOST, PGDATABASE, ...). Default nil.
    ///   - options: timing and batch settings; default `CoordinatorOptions()`.
    ///   - logger: receives start, stop, leadership changes and every caught error; default
    ///     `StandardErrorLogger()`, logfmt on standard error.
    public init(
        connectionString: String? = nil, options: CoordinatorOptions = CoordinatorOptions(),
        logger: any SluiceLogger = StandardErrorLogger()
    ) {
        self.connectionString = connectionString
        self.options = options
        self.logger = logger
    }

    /// Whether this coordinator holds the leadership lock, as far as it knows.
    ///
    /// NOTE: a leader whose session was terminated finds out at its next call on that
    /// session, up to `maximumSleep` later. Until then it still reports true, but it cannot act,
    /// because every call it makes fails on the dead session.
    public var isLeader: Bool {
        status.isLeader
    }

    /// Asks a running `run()` to stop; it returns after closing its connections.
    public func stop() {
        wakeSignal.signal(.stop)
    }

    /// Runs until `stop()` is called or the calling task is cancelled. Connection failures
    /// are retried with backoff and never end the run.
    public func run() async {
        await withTaskCancellationHandler {
            await runLoop()
        } onCancel: {
            wakeSignal.signal(.stop)
        }
    }

    // MARK: The loop

    /// The connections of one run; reset whenever the leadership connection is lost.
    private struct Session {
        var connection: PostgresConnection?
        var backendProcessID: Int32?
        var listener: PostgresListener?
        var listenerTask: Task<Void, Never>?
    }

    private func runLoop() async {
        logger.info("coordinator started", ["tick_limit": String(options.tickLimit)])
        var state = CoordinatorState(options: options)
        var session = Session()
        var action = state.handle(.started)

        while true {
            let event: CoordinatorState.Event
            switch action {
            case .connect(let delay):
                event = await connect(after: delay, session: &session)
            case .tryLock:
                event = await tryLock(session: &session)
            case .waitForLeadership(let delay):
                event = await waitQuietly(delay)
            case .listen:
                event = await listen(session: &session)
            case .tick(let limit):
                event = await tick(limit: limit, session: &session)
            case .maintain:
                event = await maintain(session: &session)
            case .vacuumHotTables:
                event = await vacuumHotTables(session: &session)
            case .sleep(let delay):
                let reason = await wakeSignal.wait(timeout: delay)
                event = reason == .stop ? .stopRequested : .wokeUp(at: .now)
            case .stop(let releaseLock):
                await close(session: &session)
                if releaseLock {
                    logger.info("released leadership")
                }
                status.isLeader = false
                logger.info("coordinator stopped")
                return
            }

            let wasLeader = state.isLeader
            if case .connectionLost = event, wasLeader {
                status.isLeader = false
            }
            action = state.handle(event)
            if state.isLeader != wasLeader {
                status.isLeader = state.isLeader
                if state.isLeader {
                    logger.info("became leader", ["backend_pid": session.backendProcessID.map(String.init) ?? "unknown"])
                } else if case .stop = action {
                    // Stopping while leading is logged by the stop action.
                } else {
                    logger.warning("lost leadership", ["backend_pid": session.backendProcessID.map(String.init) ?? "unknown"])
                    await close(session: &session)
                }
            }
        }
    }

    /// Waits for `delay` unless a stop arrives; notifications do not end it, because a
    /// candidate has nothing to do with them.
    private func waitQuietly(_ delay: Duration) async -> CoordinatorState.Event {
        let deadline = ContinuousClock.now + delay
        while true {
            let remaining = deadline - .now
            if remaining <= .zero {
                return .wokeUp(at: .now)
            }
            if await wakeSignal.wait(timeout: remaining) == .stop {
                return .stopRequested
            }
        }
    }

    private func connect(after delay: Duration, session: inout Session) async -> CoordinatorState.Event {
        await close(session: &session)
        if delay > .zero, await waitQuietly(delay) == .stopRequested {
            return .stopRequested
        }
        do {
            // One attempt per call: the state decides the backoff, and a silent reconnect
            // inside the binding would give a session that does not hold the lock.
            let connection = try await PostgresConnection.connect(
                connectionString, applicationName: "sluice-coordinator",
                reconnectPolicy: ReconnectPolicy(maximumAttempts: 1))
            session.connection = connection
            session.backendProcessID = try await connection.backendProcessID()
            return .connected
        } catch {
            logger.error("could not connect", ["error": String(describing: error)])
            return .connectionFailed
        }
    }

    private func tryLock(session: inout Session) async -> CoordinatorState.Event {
        do {
            let rows = try await leaderConnection(session).query(
                "SELECT pg_try_advisory_lock($1, $2)", [Self.lockKeys.0, Self.lockKeys.1])
            return try rows[0].decode(Bool.self, at: 0) ? .lockAcquired(at: .now) : .lockHeldElsewhere
        } catch {
            return failure(error, during: "lock attempt", otherwise: .connectionLost)
        }
    }

    private func listen(session: inout Session) async -> CoordinatorState.Event {
        do {
            let listener = try await PostgresListener.start(
                connectionString, channels: ["sluice_timer"], applicationName: "sluice-coordinator-listener")
            session.listener = listener
            session.listenerTask = Task { [wakeSignal] in
                for await event in listener.notifications {
                    switch event {
                    case .notification:
                        wakeSignal.signal(.notification)
                    case .reconnected:
                        wakeSignal.signal(.reconnected)
                    }
                }
            }
            return .listening
        } catch {
            logger.error("could not listen on sluice_timer", ["error": String(describing: error)])
            return .connectionLost
        }
    }

    private func tick(limit: Int, session: inout Session) async -> CoordinatorState.Event {
        wakeSignal.clearPending()
        do {
            let connection = try await leaderConnection(session)
            let rows = try await connection.queryCached(
                "SELECT t.*, extract(epoch FROM t.next_due_at - sluice.now())::float8 AS sluice_seconds_until_due "
                    + "FROM sluice.tick($1) t", [limit])
            let result = try Self.tickResult(from: rows)
            if result.total > 0 {
                logger.debug("tick", ["counts": Self.describe(result.counts)])
            }
            return .ticked(result, at: .now)
        } catch {
            return failure(error, during: "tick", otherwise: .tickFailed)
        }
    }

    private func maintain(session: inout Session) async -> CoordinatorState.Event {
        do {
            let rows = try await leaderConnection(session).query(
                "SELECT rotated, dropped_partitions, deleted_workers FROM sluice.maintain()")
            let row = rows[0]
            let rotated = try row.decode(Bool.self, at: 0)
            let droppedPartitions = try row.decode(Int.self, at: 1)
            let deletedWorkers = try row.decode(Int.self, at: 2)
            logger.debug("maintenance finished", [
                "rotated": rotated ? "true" : "false",
                "dropped_partitions": String(droppedPartitions),
                "deleted_workers": String(deletedWorkers),
            ])
            return .maintenanceFinished(at: .now)
        } catch {
            return failure(error, during: "maintenance", otherwise: .maintenanceFinished(at: .now))
        }
    }

    /// Vacuums the hot tables that have 1,000 dead rows or more, and counts the dead rows before
    /// and after. VACUUM cannot run inside a function, so the coordinator issues it.
    /// `SKIP_LOCKED` passes over a table that another VACUUM holds. Then it calls
    /// `sluice.shed_dead_rows()`, which checks for a long transaction that keeps the vacuums
    /// from removing the dead rows of the ready and lease tables, and truncates them if so.
    private func vacuumHotTables(session: inout Session) async -> CoordinatorState.Event {
        do {
            let connection = try await leaderConnection(session)
            let rows = try await connection.query(
                "SELECT ARRAY(SELECT t::text FROM sluice.hot_tables_to_vacuum() AS t), sluice.hot_tables_dead_rows()")
            let tables = try rows[0].decode([String].self, at: 0)
            let deadRowsBefore = try rows[0].decode(Int.self, at: 1)
            guard !tables.isEmpty else {
                return .vacuumFinished(deadRowsBefore: deadRowsBefore, deadRowsAfter: deadRowsBefore, at: .now)
            }
            for table in tables {
                try await connection.execute("VACUUM (SKIP_LOCKED) \(table)")
                logger.debug("vacuumed a hot table", ["table": table])
            }
            let after = try await connection.query("SELECT sluice.hot_tables_dead_rows()")
            let deadRowsAfter = try after[0].decode(Int.self, at: 0)
            let shed = try await connection.query("SELECT sluice.shed_dead_rows()")[0].decode(Bool.self, at: 0)
            if shed {
                logger.debug("truncated the dead rows of the ready and lease tables")
            }
            return .vacuumFinished(deadRowsBefore: deadRowsBefore, deadRowsAfter: deadRowsAfter, shed: shed, at: .now)
        } catch {
            return failure(error, during: "vacuum", otherwise: .vacuumFinished(deadRowsBefore: 0, deadRowsAfter: 0, at: .now))
        }
    }

    /// Returns the leadership connection, failing when it is missing or was silently replaced
    /// by a new session (a new backend process ID), which would not hold the lock.
    private func leaderConnection(_ session: Session) async throws -> PostgresConnection {
        guard let connection = session.connection, let expected = session.backendProcessID,
            try await connection.backendProcessID() == expected
        else {
            throw PostgresError(kind: .connectionLost, message: "the leadership session was replaced")
        }
        return connection
    }

    /// Logs a caught error and maps it to `.connectionLost` when the session is gone, or to
    /// `otherwise`.
    private func failure(
        _ error: any Error, during step: String, otherwise: CoordinatorState.Event
    ) -> CoordinatorState.Event {
        let postgresError = error as? PostgresError
        let isConnectionError =
            postgresError.map { $0.isConnectionError || PostgresError.isConnectionSQLState($0.sqlState ?? "") } ?? false
        logger.log(level: isConnectionError ? .warning : .error, message: "\(step) failed", metadata: [
            "error": String(describing: error),
            "sqlstate": postgresError?.sqlState ?? "",
        ])
        return isConnectionError ? .connectionLost : otherwise
    }

    private func close(session: inout Session) async {
        session.listener?.close()
        session.listenerTask?.cancel()
        if let connection = session.connection {
            await connection.close()
        }
        session = Session()
    }

    // MARK: Decoding

    /// Reads a `tick()` row: every integer column except the due time is a count.
    static func tickResult(from rows: PostgresRows) throws -> TickResult {
        guard let row = rows.first else {
            return TickResult(counts: [:], secondsUntilDue: nil)
        }
        var counts: [String: Int] = [:]
        for (index, name) in row.columnNames.enumerated() where name != "sluice_seconds_until_due" {
            if let text = row.text(at: index), let count = Int(text) {
                counts[name] = count
            }
        }
        let seconds = try row.decode(Double?.self, column: "sluice_seconds_until_due")
        return TickResult(counts: counts, secondsUntilDue: seconds)
    }

    private static func describe(_ counts: [String: Int]) -> String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
    }
}

/// The leadership flag shared between the loop and callers of `isLeader`.
private final class LeadershipStatus: @unchecked Sendable {
    // @unchecked: `leader` is guarded by `lock`.
    private let lock = NSLock()
    private var leader = false

    var isLeader: Bool {
        get { lock.withLock { leader } }
        set { lock.withLock { leader = newValue } }
    }
}
