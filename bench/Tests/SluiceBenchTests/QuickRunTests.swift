import Foundation
import Testing

/// Runs the built `sluice-bench` with `--quick` on its own embedded server, so the harness is
/// exercised by every `swift test` without the minutes a full run takes. Needs the extension
/// installed (`make install-extension`) and PostgreSQL 15's server binaries.
@Suite(.serialized)
struct QuickRunTests {
    /// The directory with the built products: the test bundle's directory on Linux, the
    /// bundle's parent on macOS.
    static var productsDirectory: URL {
        #if os(macOS)
        return Bundle.main.bundleURL.deletingLastPathComponent()
        #else
        return Bundle.main.bundleURL
        #endif
    }

    /// Runs the benchmark with `arguments`, writing JSON to a temporary file, and returns the
    /// exit status, the combined output and the decoded report.
    static func runBench(_ arguments: [String]) throws -> (status: Int32, output: String, report: [String: Any]?) {
        let outputFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("sluice-bench-test-\(UUID().uuidString).json")
        defer {
            try? FileManager.default.removeItem(at: outputFile)
            try? FileManager.default.removeItem(at: outputFile.deletingPathExtension().appendingPathExtension("md"))
        }
        let logFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("sluice-bench-test-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: logFile) }
        let log = try FileHandle(forWritingTo: logFile)

        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent("sluice-bench")
        process.arguments = ["--quick", "--output", outputFile.path] + arguments
        process.standardOutput = log
        process.standardError = log
        try process.run()
        process.waitUntilExit()
        try log.close()
        let output = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        let report = (try? Data(contentsOf: outputFile)).flatMap {
            try? JSONSerialization.jsonObject(with: $0) as? [String: Any]
        }
        return (process.terminationStatus, output, report)
    }

    static func figureNames(_ report: [String: Any]?) -> [String] {
        ((report?["figures"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
    }

    @Test func enqueueAndEndToEndMeasureTheirFloors() throws {
        let run = try Self.runBench(["--scenario", "enqueue", "--scenario", "end-to-end", "--rounds", "2"])
        #expect(run.status == 0, "\(run.output)")
        let names = Self.figureNames(run.report)
        #expect(names.contains("insert 1 per transaction, 1 conn"))
        #expect(names.contains("drain 4 connections, batch 100, beside 4 processes x 1 loop, batch 100"))
        #expect(names.contains("enqueue_many batch 100, 4 conn"))
        #expect(names.contains("drain 4 processes x 1 loop, batch 100"))
        #expect(names.contains("drain SDK Worker, 4 processes x 100 slots"))
        let targets = (run.report?["targets"] as? [[String: Any]]) ?? []
        let single = targets.first { ($0["name"] as? String) == "enqueue single, 1 conn vs floor insert" }
        // Two rounds: the measured text gives the figures of both and the ratio of each.
        let measured = single?["measured"] as? String ?? ""
        #expect(measured.contains(" and "), "\(measured)")
        let rounds = measured.components(separatedBy: "; rounds ").last?.dropLast() ?? ""
        #expect(rounds.split(separator: ",").count == 2, "\(measured)")
        let settings = (run.report?["settings"] as? [String: String]) ?? [:]
        #expect(settings["sluice history partitions"] == "8")
    }

    @Test func latencyBacklogBloatAndMemory() throws {
        let run = try Self.runBench([
            "--scenario", "latency", "--scenario", "backlog", "--scenario", "bloat", "--scenario", "memory",
        ])
        #expect(run.status == 0, "\(run.output)")
        let names = Self.figureNames(run.report)
        #expect(names.contains("100/s: enqueue to start p99"))
        #expect(names.contains("10000 waiting: claim+complete"))
        #expect(names.contains("throughput while the snapshot is held"))
        #expect(names.contains("SQL-protocol worker VmRSS with 1000 runs in flight"))
        #expect(names.contains("SDK Worker VmRSS with 1000 runs in flight"))
        #expect(names.contains("SDK Worker, 100/s: enqueue to start p99"))
        let plans = (run.report?["plans"] as? [String: String]) ?? [:]
        #expect(plans.keys.contains("claim(100) with 10000 runs waiting"))
    }

    @Test func flowControlOverhead() throws {
        let run = try Self.runBench(["--scenario", "flow"])
        #expect(run.status == 0, "\(run.output)")
        let names = Self.figureNames(run.report)
        #expect(names.contains("drain 2 processes x 1 loop, batch 100, plain"))
        #expect(names.contains("drain 2 processes x 1 loop, batch 100, 1000 concurrency keys"))
        #expect(names.contains("drain 2 processes x 1 loop, batch 100, rate limit"))
        let targets = (run.report?["targets"] as? [[String: Any]]) ?? []
        #expect(targets.contains {
            ($0["name"] as? String) == "flow, rate limit vs plain, 2 processes x 1 loop, batch 10"
        })
    }

    @Test func closedOutputEndsPrintingOnly() throws {
        let outputFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("sluice-bench-test-\(UUID().uuidString).json")
        defer {
            try? FileManager.default.removeItem(at: outputFile)
            try? FileManager.default.removeItem(at: outputFile.deletingPathExtension().appendingPathExtension("md"))
        }
        let process = Process()
        process.executableURL = Self.productsDirectory.appendingPathComponent("sluice-bench")
        process.arguments = ["--quick", "--scenario", "memory", "--output", outputFile.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The reader goes away at once, as `head` does after its lines.
        try pipe.fileHandleForReading.close()
        // A benchmark that crashed on the closed output was once left unreaped, and
        // waitUntilExit() never returned, so the test waits a bounded time.
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        guard !process.isRunning else {
            process.terminate()
            Issue.record("sluice-bench did not exit within 120 s after its output was closed")
            return
        }

        #expect(process.terminationStatus == 0)
        #expect(FileManager.default.fileExists(atPath: outputFile.path))
        let serverDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("sluice-bench-\(process.processIdentifier)").path
        #expect(!FileManager.default.fileExists(atPath: serverDirectory))
    }

    /// Each bad argument exits with status 2 before a server starts, naming the value.
    @Test(arguments: [
        (arguments: ["--history-partitions", "0"],
         message: "invalid --history-partitions \"0\"; expected a number from 1 to 100"),
        (arguments: ["--rounds", "10"], message: "invalid --rounds \"10\"; expected a number from 1 to 9"),
        (arguments: ["--scenario", "floor"], message: "\"floor\" is no longer a scenario of its own"),
        (arguments: ["--scenario", "nonsense"], message: "unknown scenario \"nonsense\""),
    ])
    func invalidArgumentIsRejected(_ rejection: (arguments: [String], message: String)) throws {
        let run = try Self.runBench(rejection.arguments)
        #expect(run.status == 2)
        #expect(run.output.contains(rejection.message), "\(run.output)")
    }
}
