import EmbeddedPostgres
import Foundation
import SluicePostgres

/// The database a run measures: an embedded server started for the run, or one given with
/// `--database`.
final class BenchDatabase: Sendable {
    /// Server settings of the embedded server. Durability stays at PostgreSQL's defaults (fsync,
    /// synchronous_commit and full_page_writes on). The rest sizes memory and WAL so that
    /// checkpoints do not dominate short measurements, loads pg_stat_statements and logs lock
    /// waits longer than deadlock_timeout (kept with `--keep-server`).
    static let serverSettings: [String: String] = [
        "fsync": "on",
        "synchronous_commit": "on",
        "full_page_writes": "on",
        "shared_buffers": "512MB",
        "work_mem": "16MB",
        "max_wal_size": "4GB",
        "checkpoint_timeout": "15min",
        "max_connections": "100",
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "all",
        "track_io_timing": "on",
        "log_lock_waits": "on",
    ]

    /// Settings printed in the report, read back from the server.
    static let reportedSettings = [
        "server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers",
        "work_mem", "max_wal_size", "checkpoint_timeout", "max_connections", "autovacuum",
        "autovacuum_naptime", "shared_preload_libraries", "data_checksums",
    ]

    /// The name of the only task the scenarios enqueue.
    static let taskName = "bench-noop"

    let connectionString: String
    /// The embedded server, nil with `--database`.
    let server: EmbeddedPostgres?
    private let keepServer: Bool

    private init(connectionString: String, server: EmbeddedPostgres?, keepServer: Bool) {
        self.connectionString = connectionString
        self.server = server
        self.keepServer = keepServer
    }

    /// Starts an embedded server in a new temporary directory, or uses `url`, and prepares the
    /// schema: the extension, pg_stat_statements when the server loads it, the floor tables, the
    /// benchmark task and at least `historyPartitions` partitions of run history.
    static func open(url: String?, keepServer: Bool, historyPartitions: Int) async throws -> BenchDatabase {
        let database: BenchDatabase
        if let url {
            database = BenchDatabase(connectionString: url, server: nil, keepServer: true)
        } else {
            // A short path: the socket path inside it must fit in 107 bytes.
            let directory = URL(fileURLWithPath: NSTemporaryDirectory())
                .appendingPathComponent("sluice-bench-\(getpid())")
            let server = EmbeddedPostgres(
                directory: directory, port: 50000 + Int(getpid() % 10000), settings: serverSettings)
            try await Task.detached { try server.start() }.value
            try await server.createDatabase("sluice_bench")
            database = BenchDatabase(
                connectionString: server.connectionString(database: "sluice_bench"), server: server,
                keepServer: keepServer)
        }
        try await database.prepareSchema()
        try await database.startHistoryPartitions(historyPartitions)
        return database
    }

    /// Opens a new connection with `name` as its application_name.
    func connect(_ name: String) async throws -> PostgresConnection {
        try await PostgresConnection.connect(connectionString, applicationName: "sluice-bench \(name)")
    }

    /// Runs `body` with a new connection and closes it afterwards.
    func withConnection<Value>(
        _ name: String, _ body: (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        try await PostgresConnection.withConnection(connectionString, applicationName: "sluice-bench \(name)", body)
    }

    /// Stops the embedded server and removes its directory unless `--keep-server` was given.
    func close() async {
        guard let server else { return }
        try? await Task.detached { try server.stop(mode: .fast) }.value
        if keepServer {
            printLine("server directory kept: \(server.directory.path)")
        } else {
            try? FileManager.default.removeItem(at: server.directory)
        }
    }

    private func prepareSchema() async throws {
        try await withConnection("setup") { connection in
            try await connection.execute("CREATE EXTENSION IF NOT EXISTS sluice")
            let preloaded = try await connection.query("SELECT current_setting('shared_preload_libraries')")
            if try preloaded[0].decode(String.self, at: 0).contains("pg_stat_statements") {
                try await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            }
            for statement in Self.floorSchema {
                try await connection.execute(statement)
            }
            try await Self.defineTask(connection, .plain)
        }
    }

    /// Starts partitions of `sluice.runs` until it has `count`, the way `sluice.maintain()` does
    /// in a deployment over days. The partition interval is set to one minute and the clock
    /// moves two minutes ahead for each partition, then both go back. The partitions stay empty,
    /// and new runs go to the last one.
    private func startHistoryPartitions(_ count: Int) async throws {
        try await withConnection("setup") { connection in
            let existing = try await connection.query("SELECT count(*)::integer FROM sluice.run_partitions")
            let missing = count - (try existing[0].decode(Int.self, at: 0))
            guard missing > 0 else {
                return
            }
            let interval = try await connection.query("SELECT partition_interval::text FROM sluice.settings")
            let previousInterval = try interval[0].decode(String.self, at: 0)
            try await connection.execute("SELECT sluice.configure(partition_interval => '1 minute')")
            for step in 1...missing {
                try await connection.execute("SELECT set_config('sluice.clock_offset', $1, false)", ["\(2 * step) minutes"])
                try await connection.execute("SELECT sluice.maintain()")
            }
            try await connection.execute("SELECT set_config('sluice.clock_offset', '', false)")
            try await connection.execute("SELECT sluice.configure(partition_interval => $1::interval)", [previousInterval])
        }
    }

    /// Defines (or redefines) the benchmark task with `options`.
    func defineTask(_ options: BenchTaskOptions) async throws {
        try await withConnection("setup") { connection in
            try await Self.defineTask(connection, options)
        }
    }

    private static func defineTask(_ connection: PostgresConnection, _ options: BenchTaskOptions) async throws {
        // One attempt and a one-hour execution timeout, so that the memory scenario's
        // sleeping runs cannot expire and be claimed twice during a measurement.
        try await connection.execute(
            """
            SELECT sluice.define_task($1, max_attempts => 1, execution_timeout => '1 hour',
                                      concurrency => $2::jsonb, rate_limits => $3::jsonb)
            """,
            [taskName, options.concurrency.map(PostgresJSON.init), options.rateLimits.map(PostgresJSON.init)])
    }

    /// The floor: the least a durable queue with history stores for a no-op run. A job row
    /// keyed by a sequence, claimed by deleting it, and a completion row written in the same
    /// transaction, so a crash before the commit leaves the job queued (at-least-once).
    static let floorSchema = [
        "CREATE SCHEMA IF NOT EXISTS bench_floor",
        """
        CREATE TABLE IF NOT EXISTS bench_floor.jobs (
            id bigserial PRIMARY KEY,
            input jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now())
        """,
        """
        CREATE TABLE IF NOT EXISTS bench_floor.completions (
            id bigint PRIMARY KEY,
            input jsonb NOT NULL,
            output jsonb,
            created_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL DEFAULT now())
        """,
    ]

    /// Empties the queue tables, the history and the floor tables, and checkpoints, so every
    /// measurement starts from empty tables and a fresh checkpoint. With `includingFlowControl`
    /// it also empties the gates, held runs and concurrency slots, which a drain stopped
    /// before the queue was empty leaves counting runs that no longer exist. Rate limit
    /// buckets stay.
    ///
    /// One statement empties every table. Between two statements the coordinator's tick
    /// could move held runs of deleted runs back into the emptied ready queue. The next
    /// drain's first claims would then find only those orphans and stop the drain early.
    func reset(includingFlowControl: Bool = false) async throws {
        var tables = [
            "sluice.ready", "sluice.delayed", "sluice.leases", "sluice.runs", "sluice.attempt_errors",
            "sluice.idempotency_keys", "bench_floor.jobs", "bench_floor.completions",
        ]
        if includingFlowControl {
            tables += ["sluice.run_gates", "sluice.held", "sluice.concurrency_slots"]
        }
        try await withConnection("reset") { connection in
            // The coordinator's tick locks some of these tables in another order (slot rows, then
            // ready), so the TRUNCATE can be chosen as a deadlock's victim. Emptying is
            // idempotent: try again.
            for attempt in 1...5 {
                do {
                    try await connection.execute("TRUNCATE " + tables.joined(separator: ", "))
                    break
                } catch let error as PostgresError where error.sqlState == "40P01" && attempt < 5 {
                    continue
                }
            }
            try await connection.execute("DELETE FROM sluice.workers")
            try await connection.execute("CHECKPOINT")
        }
    }

    /// Registers a worker for the benchmark task and returns its id.
    static func registerWorker(_ connection: PostgresConnection, name: String, slots: Int) async throws -> UUID {
        let rows = try await connection.query(
            "SELECT sluice.register_worker($1, ARRAY[$2], slots => $3, lease_timeout => '1 day', pid => $4)",
            [name, taskName, slots, Int(getpid())])
        return try rows[0].decode(UUID.self, at: 0)
    }

    /// Returns the reported settings by name, as `current_setting` prints them.
    func settings() async throws -> [String: String] {
        try await withConnection("settings") { connection in
            let rows = try await connection.query(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY($1)",
                [Self.reportedSettings])
            var settings: [String: String] = [:]
            for row in rows {
                settings[try row.decode(String.self, at: 0)] = try row.decode(String.self, at: 1)
            }
            // The SQL under test changes between commits, so the report names the installed
            // version and a digest of its function bodies: equal digests mean equal SQL.
            let installed = try await connection.query("""
                SELECT e.extversion || ', functions md5 ' || left(md5(string_agg(p.prosrc, '' ORDER BY p.proname, p.oid)), 12)
                FROM pg_extension e, pg_proc p
                WHERE e.extname = 'sluice' AND p.pronamespace = 'sluice'::regnamespace
                GROUP BY e.extversion
                """)
            settings["sluice extension"] = try installed[0].decode(String.self, at: 0)
            let partitions = try await connection.query("SELECT count(*)::text FROM sluice.run_partitions")
            settings["sluice history partitions"] = try partitions[0].decode(String.self, at: 0)
            return settings
        }
    }

    /// Returns whether pg_stat_statements is installed in the database.
    func hasStatementStatistics() async throws -> Bool {
        try await withConnection("settings") { connection in
            let rows = try await connection.query(
                "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")
            return try rows[0].decode(Int.self, at: 0) > 0
        }
    }
}

/// Flow-control options of the benchmark task, as JSON text for `sluice.define_task`. Nil leaves
/// the option at its default, which is no rules.
struct BenchTaskOptions: Sendable {
    var concurrency: String?
    var rateLimits: String?

    /// The task every scenario except `flow` measures: no concurrency rules and no rate limits.
    static let plain = BenchTaskOptions()
}
