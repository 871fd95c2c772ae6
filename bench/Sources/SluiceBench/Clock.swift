import Foundation

/// Time stamps for measurements.
enum Clock {
    /// Seconds on the monotonic clock, for durations inside one process.
    static func monotonic() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Seconds on the wall clock (CLOCK_REALTIME), for comparing times between processes on
    /// one machine.
    static func wall() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Sleeps for `seconds` without blocking a thread.
    static func sleep(seconds: Double) async {
        try? await Task.sleep(nanoseconds: UInt64(max(seconds, 0) * 1e9))
    }
}

/// Latency percentiles in milliseconds.
struct Percentiles: Codable, Sendable {
    var count: Int
    var p50: Double
    var p95: Double
    var p99: Double
    var max: Double

    /// Computes nearest-rank percentiles of `seconds`, reported in milliseconds.
    init(seconds: [Double]) {
        let sorted = seconds.sorted()
        count = sorted.count
        func rank(_ fraction: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            let index = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, index))] * 1000
        }
        p50 = rank(0.50)
        p95 = rank(0.95)
        p99 = rank(0.99)
        max = rank(1.0)
    }
}
