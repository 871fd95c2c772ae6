import Foundation
import SluicePostgres

/// What every scenario gets: the database, the sizes for this mode and the report.
struct ScenarioContext: Sendable {
    let database: BenchDatabase
    let quick: Bool
    let report: ReportBuilder
    /// How many times `measurePaired` measures a figure and its floor figure.
    let rounds: Int

    /// Seconds for one rate measurement.
    var measureSeconds: Double { quick ? 0.5 : 10 }

    /// Seconds for one round of a paired rate measurement.
    var pairedSeconds: Double { quick ? 0.5 : 5 }

    /// Runs waiting before each drain measurement; the drain stops at `drainSeconds` if the
    /// backlog lasts longer.
    var drainBacklog: Int { quick ? 300 : 50_000 }
    var drainSeconds: Double { quick ? 1 : 15 }

    /// Runs `body` on `connections` new connections at once until `seconds` pass, and returns
    /// rows per second: the sum of what `body` returned over the elapsed time.
    func measureRate(
        connections: Int, seconds: Double, _ body: @escaping @Sendable (PostgresConnection, Int) async throws -> Int
    ) async throws -> Double {
        var opened: [PostgresConnection] = []
        for index in 0..<connections {
            opened.append(try await database.connect("load \(index)"))
        }
        let started = Clock.monotonic()
        let deadline = started + seconds
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for connection in opened {
                group.addTask {
                    var rows = 0
                    var call = 0
                    while Clock.monotonic() < deadline {
                        rows += try await body(connection, call)
                        call += 1
                    }
                    return rows
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = Clock.monotonic() - started
        for connection in opened {
            await connection.close()
        }
        return Double(total) / elapsed
    }

    /// Measures a Sluice figure and the floor figure it is compared with, `rounds` times,
    /// alternating which of the two goes first. A machine whose speed drifts during the run
    /// then moves both figures of a round alike, which it does not when the floor is measured
    /// minutes before the figure compared with it.
    func measurePaired(
        rounds: Int? = nil, floor: () async throws -> Double, sluice: () async throws -> Double
    ) async throws -> PairedFigures {
        var pair = PairedFigures()
        for round in 0..<(rounds ?? self.rounds) {
            if round % 2 == 0 {
                pair.floor.append(try await floor())
                pair.sluice.append(try await sluice())
            } else {
                pair.sluice.append(try await sluice())
                pair.floor.append(try await floor())
            }
        }
        return pair
    }

    /// Enqueues `count` runs of the benchmark task with `sluice.enqueue_many`, 10,000 a call,
    /// with sequence numbers from `firstSeq`. `inputs` builds the inputs for a range of sequence
    /// numbers, by default `{"seq": n}`, and each input needs `seq` for the no-op handler.
    func enqueueBacklog(
        _ count: Int, firstSeq: Int = 0, inputs: (Range<Int>) -> [PostgresJSON] = BenchInput.inputs
    ) async throws {
        try await database.withConnection("backlog") { connection in
            var next = firstSeq
            while next < firstSeq + count {
                let end = min(next + 10_000, firstSeq + count)
                try await connection.execute(
                    "SELECT cardinality(sluice.enqueue_many($1, $2::jsonb[]))",
                    [BenchDatabase.taskName, inputs(next..<end)])
                next = end
            }
        }
    }

    /// Inserts `count` floor jobs, 10,000 a statement.
    func insertFloorBacklog(_ count: Int) async throws {
        try await database.withConnection("backlog") { connection in
            var next = 0
            while next < count {
                let end = min(next + 10_000, count)
                try await connection.execute(
                    "INSERT INTO bench_floor.jobs (input) SELECT unnest($1::jsonb[])", [BenchInput.inputs(next..<end)])
                next = end
            }
        }
    }

    /// Runs `steps` concurrently (one drain loop each) until the queue is empty or
    /// `seconds` pass, and returns the merged counts and the elapsed seconds.
    func drain(_ steps: [DrainStep], seconds: Double, stopWhenEmpty: Bool = true) async throws -> (DrainStats, Double) {
        let started = Clock.monotonic()
        let limits = DrainLimits(deadline: started + seconds, stopWhenEmpty: stopWhenEmpty)
        let stats = try await withThrowingTaskGroup(of: DrainStats.self) { group in
            for step in steps {
                group.addTask { try await DrainLoop.run(step, limits: limits) }
            }
            var total = DrainStats()
            for try await stats in group {
                total.merge(stats)
            }
            return total
        }
        return (stats, Clock.monotonic() - started)
    }

    /// Returns `n_dead_tup` and `n_live_tup` of the hot tables, each partitioned table's partitions
    /// added up under its own name.
    func tupleCounts() async throws -> [String: (dead: Int, live: Int)] {
        try await database.withConnection("statistics") { connection in
            let rows = try await connection.query("""
                SELECT regexp_replace(relname, '_[01]$', ''), sum(n_dead_tup)::bigint, sum(n_live_tup)::bigint
                FROM pg_stat_user_tables
                WHERE schemaname = 'sluice'
                  AND relname IN ('ready_0', 'ready_1', 'leases_0', 'leases_1', 'runs_p0', 'workers')
                GROUP BY 1
                """)
            var counts: [String: (dead: Int, live: Int)] = [:]
            for row in rows {
                counts[try row.decode(String.self, at: 0)] = (try row.decode(Int.self, at: 1), try row.decode(Int.self, at: 2))
            }
            return counts
        }
    }
}

/// A Sluice figure and its floor figure, one of each per round of `measurePaired`.
struct PairedFigures: Sendable {
    var floor: [Double] = []
    var sluice: [Double] = []

    /// The rounds with a floor figure to divide by, as (sluice, floor, ratio) in round order.
    var comparableRounds: [(sluice: Double, floor: Double, ratio: Double)] {
        zip(sluice, floor).compactMap { sluice, floor in
            floor > 0 && floor.isFinite && sluice.isFinite ? (sluice, floor, sluice / floor) : nil
        }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else {
            return 0
        }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

/// A drain configuration shared by the floor and the Sluice scenarios: `processes` worker
/// processes with `loops` claim loops (connections) each, claiming `batchSize` runs at a time.
/// The floor runs the same number of connections in the benchmark process.
struct DrainConfig: Sendable {
    var processes: Int
    var loops: Int
    var batchSize: Int
    var pipelined = false

    var connections: Int { processes * loops }

    /// The figure name, such as `1 process x 4 loops, batch 25`.
    var label: String {
        "\(processes) process\(processes == 1 ? "" : "es") x \(loops) loop\(loops == 1 ? "" : "s"), batch \(batchSize)"
            + (pipelined ? ", pipelined" : "")
    }

    /// The floor figure with the same connection count and batch size.
    var floorLabel: String {
        "drain \(connections) connection\(connections == 1 ? "" : "s"), batch \(batchSize)"
    }

    static let all = [
        DrainConfig(processes: 1, loops: 1, batchSize: 1),
        DrainConfig(processes: 1, loops: 1, batchSize: 10),
        DrainConfig(processes: 1, loops: 1, batchSize: 100),
        DrainConfig(processes: 1, loops: 4, batchSize: 25),
        DrainConfig(processes: 4, loops: 1, batchSize: 1),
        DrainConfig(processes: 4, loops: 1, batchSize: 100),
    ]

    /// The Sluice-only variants: the same as a floor configuration but pipelined.
    static let pipelinedVariants = [
        DrainConfig(processes: 1, loops: 1, batchSize: 100, pipelined: true),
        DrainConfig(processes: 4, loops: 1, batchSize: 100, pipelined: true),
    ]
}
