import Foundation
import SluicePostgres

/// The outcome of one demo job, read from `sluice.runs`: the runs carry the job's id in their
/// metadata, so runs of earlier jobs in the same database are not counted.
struct JobReport {
    /// One of the largest indexed files.
    struct LargeFile {
        var path: String
        var bytes: Int64
        var sha256: String
    }

    var succeeded = 0
    var failed = 0
    var cancelled = 0
    var notFinal = 0
    /// Failure messages of the first failed runs, by run id.
    var firstFailures: [String] = []
    /// Final runs per second between the first start and the last finish.
    var throughput: Double?
    /// The seconds between the first start and the last finish.
    var processingSeconds: Double?
    /// Seconds from enqueue to start of runs started on their first attempt: median and 99th
    /// percentile.
    var latencyP50: Double?
    var latencyP99: Double?
    var largestFiles: [LargeFile] = []

    /// The SQL condition that selects the job's runs; `$1` is the job's metadata object.
    static let jobCondition = "task = 'index-file' AND metadata @> $1::jsonb"

    /// Returns how many of the job's runs are not yet final.
    static func countNotFinal(on connection: PostgresConnection, jobMetadata: String) async throws -> Int {
        let rows = try await connection.query(
            "SELECT count(*) FROM sluice.runs WHERE \(jobCondition) AND status IN ('scheduled', 'queued', 'running')",
            [jobMetadata])
        return try rows[0].decode(Int.self, at: 0)
    }

    /// Reads the report of the job whose runs carry `jobMetadata`.
    static func load(on connection: PostgresConnection, jobMetadata: String) async throws -> JobReport {
        var report = JobReport()
        let statusRows = try await connection.query(
            "SELECT status::text, count(*) FROM sluice.runs WHERE \(jobCondition) GROUP BY status", [jobMetadata])
        for row in statusRows {
            let count = try row.decode(Int.self, at: 1)
            switch try row.decode(String.self, at: 0) {
            case "succeeded": report.succeeded = count
            case "failed": report.failed = count
            case "cancelled", "skipped": report.cancelled += count
            default: report.notFinal += count
            }
        }

        let failureRows = try await connection.query(
            """
            SELECT coalesce(error->>'message', error::text) FROM sluice.runs
            WHERE \(jobCondition) AND status = 'failed' ORDER BY id LIMIT 5
            """,
            [jobMetadata])
        report.firstFailures = try failureRows.map { try $0.decode(String.self, at: 0) }

        let timingRows = try await connection.query(
            """
            SELECT count(*) FILTER (WHERE finished_at IS NOT NULL),
                   extract(epoch FROM max(finished_at) - min(started_at))::float8,
                   (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at))
                       FILTER (WHERE attempt = 1 AND started_at IS NOT NULL))::float8,
                   (percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at))
                       FILTER (WHERE attempt = 1 AND started_at IS NOT NULL))::float8
            FROM sluice.runs WHERE \(jobCondition)
            """,
            [jobMetadata])
        let finishedCount = try timingRows[0].decode(Int.self, at: 0)
        report.processingSeconds = try timingRows[0].decode(Double?.self, at: 1)
        if let seconds = report.processingSeconds, seconds > 0 {
            report.throughput = Double(finishedCount) / seconds
        }
        report.latencyP50 = try timingRows[0].decode(Double?.self, at: 2)
        report.latencyP99 = try timingRows[0].decode(Double?.self, at: 3)

        let largestRows = try await connection.query(
            """
            SELECT output->>'path', (output->>'bytes')::bigint, output->>'sha256' FROM sluice.runs
            WHERE \(jobCondition) AND status = 'succeeded'
            ORDER BY (output->>'bytes')::bigint DESC, output->>'path' LIMIT 5
            """,
            [jobMetadata])
        report.largestFiles = try largestRows.map { row in
            LargeFile(
                path: try row.decode(String.self, at: 0), bytes: try row.decode(Int64.self, at: 1),
                sha256: try row.decode(String.self, at: 2))
        }
        return report
    }
}
