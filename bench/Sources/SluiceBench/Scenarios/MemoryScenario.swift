import Foundation
import SluicePostgres

/// Resident memory (VmRSS from /proc/PID/status) of a worker process idle and with 1,000 runs
/// in flight, each handler sleeping.
///
/// NOTE: the worker process is this benchmark's SQL-protocol worker, not the SDK's `Worker`:
/// it holds the claimed rows and one Swift task per run, which is the least an SDK holds.
enum MemoryScenario {
    static func run(_ context: ScenarioContext) async throws {
        let report = context.report
        let runs = 1_000
        try await context.database.reset()
        let child = try ChildProcess(arguments: [
            "--database", context.database.connectionString, "--memory-runs", String(runs),
            "--sleep-ms", context.quick ? "1500" : "5000",
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
        report.add(.memory, "worker VmRSS idle", idle, "MB")
        report.add(.memory, "worker VmRSS with \(runs) runs in flight", busy, "MB")
        report.add(.memory, "worker VmHWM (peak) until then", peak, "MB")
        report.check("worker memory with \(runs) runs in flight", measured: String(format: "%.1f MB", busy),
                     target: "< 50 MB", met: busy < 50 && busy > 0)
    }
}
