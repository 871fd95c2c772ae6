import Foundation
import SluicePostgres

/// The cost of flow-control bookkeeping: the same backlog drained by the same SQL-protocol
/// worker processes with the plain task, with 1,000 concurrency keys and with a rate limit.
///
/// Neither rule throttles. Key n mod 1,000 spreads the keys evenly over the backlog, and at
/// most 200 runs are in flight (2 processes x batch 100), so each key has at most one run
/// running. The rate limit is far above any rate this harness reaches. So a gap between the
/// drains is the cost of computing the gates at enqueue and checking and releasing them at
/// claim and complete. A key keeps at most its maximum of runs in the ready queue, so with 50
/// runs per key and a maximum of 10, a key's 11th and later runs wait in `sluice.held` from
/// enqueue. Those 4 of every 5 runs also pay for a hand-over back to the ready queue.
///
/// Single drains of the same configuration vary by 2x or more between runs on the shared
/// machine, so each variant drains `rounds` times, interleaved with the others in a rotating
/// order, and the figure is the median.
enum FlowScenario {
    static let configs = [
        DrainConfig(processes: 2, loops: 1, batchSize: 10),
        DrainConfig(processes: 2, loops: 1, batchSize: 100),
    ]

    static let keyCount = 1_000
    /// The concurrency maximum of each key. A key never has more than one run in flight, so no
    /// run waits for a slot.
    static let maximumPerKey = 10
    /// The name of the static rate limit of the rate-limit variant.
    static let rateLimitKey = "bench"
    /// Runs a second the rate limit admits: the largest `max_units` that `set_rate_limit` accepts.
    static let rateLimitPerSecond = 1_000_000_000

    /// One way of defining the task, with the inputs its backlog gets.
    struct Variant: Sendable {
        var label: String
        var options: BenchTaskOptions
        var inputs: @Sendable (Range<Int>) -> [PostgresJSON]
        /// Whether each run gets one gate at enqueue.
        var gated: Bool
    }

    static let plain = Variant(label: "plain", options: .plain, inputs: BenchInput.inputs, gated: false)
    static let concurrencyKeys = Variant(
        label: "\(keyCount) concurrency keys",
        options: BenchTaskOptions(concurrency: #"{"key": "$.key", "max": \#(maximumPerKey)}"#),
        inputs: keyedInputs, gated: true)
    static let rateLimit = Variant(
        label: "rate limit",
        options: BenchTaskOptions(rateLimits: #"{"key": "\#(rateLimitKey)"}"#),
        inputs: BenchInput.inputs, gated: true)

    /// Inputs `{"seq": n, "key": "k<n mod 1000>"}`, so each key gets every 1,000th run.
    static func keyedInputs(_ range: Range<Int>) -> [PostgresJSON] {
        range.map { PostgresJSON("{\"seq\":\($0),\"key\":\"k\($0 % keyCount)\"}") }
    }

    static func run(_ context: ScenarioContext) async throws {
        let report = context.report
        _ = try await context.database.withConnection("setup") { connection in
            try await connection.execute(
                "SELECT sluice.set_rate_limit($1, $2, 'second')", [rateLimitKey, rateLimitPerSecond])
        }
        let variants = [plain, concurrencyKeys, rateLimit]
        let rounds = context.quick ? 1 : 3
        do {
            for config in configs {
                var samples: [String: [(completed: Int, rate: Double)]] = [:]
                for round in 0..<rounds {
                    for index in variants.indices {
                        let variant = variants[(index + round) % variants.count]
                        samples[variant.label, default: []].append(try await drain(context, config, variant))
                    }
                }
                var rates: [String: Double] = [:]
                for variant in variants {
                    let drains = samples[variant.label] ?? []
                    let sorted = drains.map(\.rate).sorted()
                    let median = sorted[sorted.count / 2]
                    let note = drains.count == 1
                        ? "\(drains[0].completed) runs"
                        : "median of \(drains.count): "
                            + drains.map { "\(Int($0.rate.rounded())) runs/s (\($0.completed) runs)" }
                                .joined(separator: ", ")
                    rates[variant.label] = context.report.add(
                        .flow, "drain \(config.label), \(variant.label)", median, "runs/s", note: note)
                }
                for variant in [concurrencyKeys, rateLimit] {
                    report.checkRatio(
                        "flow, \(variant.label) vs plain, \(config.label)", measured: rates[variant.label],
                        reference: rates[plain.label], minimum: 0.7)
                }
            }
        } catch {
            try? await restorePlainTask(context)
            throw error
        }
        try await restorePlainTask(context)
    }

    /// Defines the task with the options of `variant`, enqueues the backlog, drains it with
    /// `config` and returns the runs completed and the rate in runs per second.
    private static func drain(
        _ context: ScenarioContext, _ config: DrainConfig, _ variant: Variant
    ) async throws -> (completed: Int, rate: Double) {
        try await context.database.defineTask(variant.options)
        try await context.database.reset(includingFlowControl: true)
        try await context.enqueueBacklog(context.drainBacklog, inputs: variant.inputs)

        // Without gates the variant would measure the plain path again.
        let gates = try await count(context, "SELECT count(*) FROM sluice.run_gates")
        let expectedGates = variant.gated ? context.drainBacklog : 0
        guard gates == expectedGates else {
            throw BenchError.failed(
                "flow \(variant.label): expected \(expectedGates) gates for \(context.drainBacklog) runs, "
                    + "found \(gates); check the task's concurrency and rate_limits in sluice.tasks")
        }

        let (completed, elapsed) = try await EndToEndScenario.drainWithProcesses(context, config)
        let rate = Double(completed) / elapsed
        printLine("  (\(config.label), \(variant.label): \(Int(rate.rounded())) runs/s, \(completed) runs)")

        // A held run means a gate throttled the drain, so the figure would include waiting.
        let held = try await count(context, "SELECT count(*) FROM sluice.held")
        if held > 0 {
            context.report.note("flow \(variant.label), \(config.label): \(held) runs held when the drain stopped")
        }
        return (completed, rate)
    }

    /// Defines the task without rules again and deletes the rate limit, so later scenarios and
    /// later runs on the same database measure the plain task.
    private static func restorePlainTask(_ context: ScenarioContext) async throws {
        try await context.database.defineTask(.plain)
        try await context.database.reset(includingFlowControl: true)
        _ = try await context.database.withConnection("setup") { connection in
            try await connection.execute("SELECT sluice.delete_rate_limit($1)", [rateLimitKey])
        }
    }

    private static func count(_ context: ScenarioContext, _ sql: String) async throws -> Int {
        try await context.database.withConnection("statistics") { connection in
            try await connection.query(sql)[0].decode(Int.self, at: 0)
        }
    }
}
