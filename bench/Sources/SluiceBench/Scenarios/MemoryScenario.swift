import Foundation
import SluicePostgres

/// Resident memory (VmRSS from /proc/PID/status) of a worker process idle and with 1,000 runs
/// in flight, each handler sleeping.
///
/// Measured twice: for this benchmark's SQL-protocol worker, which holds the claimed rows and
/// one Swift task per run (the least any worker holds), and for the SDK's `Worker`.
enum MemoryScenario {
    static func run(_ context: ScenarioContext) async throws {
        try await measure(context, label: "SQL-protocol worker", extraArguments: [])
        try await measure(context, label: "SDK Worker", extraArguments: ["--sdk"])
    }

    private static func measure(_ context: ScenarioContext, label: String, extraArguments: [String]) async throws {
        let report = context.report
        let runs = 1_000
        try await context.database.reset()
        let child = try ChildProcess(arguments: extraArguments + [
            "--database", context.database.connectionString, "--memory-runs", String(runs),
            "--sleep-ms", context.quick ? "800" : "5000",
        ])
        _ = try await child.expect("idle")
        await Clock.sleep(seconds: 1)
        let idle = Double(child.statusKilobytes("VmRSS") ?? 0) / 1024
        try await context.enqueueBacklog(runs)
        _ = try await child.expect("inflight")
        let busy = Double(child.statusKilobytes("VmRSS") ?? 0) / 1024
        let peak = Double(child.statusKilobytes("VmHWM") ?? 0) / 1024
        let result = try await child.expect("result")
        let status = await child.waitForExit()
        guard status == 0, result.contains("\"completed\":\(runs)") else {
            throw BenchError.failed("memory: worker process exited with status \(status), result \(result)")
        }
        report.add(.memory, "\(label) VmRSS idle", idle, "MB")
        report.add(.memory, "\(label) VmRSS with \(runs) runs in flight", busy, "MB")
        report.add(.memory, "\(label) VmHWM (peak) until then", peak, "MB")
        report.check("\(label) memory with \(runs) runs in flight", measured: String(format: "%.1f MB", busy),
                     target: "< 50 MB", met: busy < 50 && busy > 0)
    }
}
