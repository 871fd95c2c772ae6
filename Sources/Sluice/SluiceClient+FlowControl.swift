import Foundation
import SluicePostgres

extension SluiceClient {
    // MARK: Rate limits

    /// Creates or changes the static rate limit `key` (`sluice.set_rate_limit`): at most `limit`
    /// units per `period`, refilled continuously. A changed limit applies at once, also to runs
    /// already waiting on it.
    ///
    /// - Parameters:
    ///   - key: the limit's name, which task rules use with `.static(key)`; it does not start
    ///     with `$`.
    ///   - limit: the bucket size, 1 to 1000000000.
    ///   - period: the refill period.
    /// - Throws: `SluiceError` with code `SL004` naming an invalid key or limit.
    public func setRateLimit(_ key: String, limit: Int, per period: RateLimitPeriod) async throws {
        try FlowValidation.checkStaticName(key)
        try FlowValidation.checkInteger("rate limit for key \"\(key)\"", limit, in: 1...1_000_000_000)
        _ = try await query("SELECT sluice.set_rate_limit($1, $2, $3)", [key, limit, period.rawValue])
    }

    /// Deletes the rate limit `key` (`sluice.delete_rate_limit`); the runs waiting on it go back
    /// to the ready queue. Returns false when no such limit exists.
    @discardableResult
    public func deleteRateLimit(_ key: String) async throws -> Bool {
        return try await queryValue(Bool.self, "SELECT sluice.delete_rate_limit($1)", [key])
    }

    /// Stops the rate limit `key` from admitting runs until `date`
    /// (`sluice.pause_rate_limit`), for example to honour an upstream Retry-After.
    ///
    /// - Throws: `SluiceError` with code `SL004` when no such limit exists.
    public func pauseRateLimit(_ key: String, until date: Date) async throws {
        _ = try await query("SELECT sluice.pause_rate_limit($1, $2::timestamptz)", [key, date])
    }

    /// Stops the rate limit `key` from admitting runs for `duration`, counted on the database
    /// clock.
    ///
    /// - Throws: `SluiceError` with code `SL004` when no such limit exists or `duration` is not
    ///   positive.
    public func pauseRateLimit(_ key: String, for duration: Duration) async throws {
        if duration <= .zero {
            throw SluiceError(
                code: .invalidOption,
                message: "invalid pause duration for rate limit \"\(key)\": \(duration); it must be positive")
        }
        _ = try await query(
                "SELECT sluice.pause_rate_limit($1, sluice.now() + $2::interval)", [key, duration.intervalText])
    }

    /// Ends a pause of the rate limit `key` (`sluice.resume_rate_limit`).
    ///
    /// - Throws: `SluiceError` with code `SL004` when no such limit exists.
    public func resumeRateLimit(_ key: String) async throws {
        _ = try await query("SELECT sluice.resume_rate_limit($1)", [key])
    }

    /// Returns every rate limit bucket, static and per key, ordered by key
    /// (`sluice.rate_limit_status`).
    public func rateLimits() async throws -> [RateLimitStatus] {
        let rows = try await query(
            """
            SELECT key, max_units, extract(epoch FROM period)::float8, dynamic, available_units,
                   next_refill_at, waiting, paused_until
            FROM sluice.rate_limit_status ORDER BY key
            """)
        return try rows.map { row in
            RateLimitStatus(
                key: try row.decode(String.self, at: 0), limit: try row.decode(Int.self, at: 1),
                period: .milliseconds(Int64((try row.decode(Double.self, at: 2) * 1000).rounded())),
                isPerKey: try row.decode(Bool.self, at: 3), availableUnits: try row.decode(Double.self, at: 4),
                nextRefillAt: try row.decode(Date?.self, at: 5), waiting: try row.decode(Int.self, at: 6),
                pausedUntil: try row.decode(Date?.self, at: 7))
        }
    }

    // MARK: Concurrency

    /// Returns the key values of concurrency rules with their running and waiting runs, ordered
    /// by task, rule and key (`sluice.concurrency_status`).
    ///
    /// - Parameter task: only this task's keys; default nil (every task).
    public func concurrencyStatus(task: String? = nil) async throws -> [ConcurrencyStatus] {
        let rows = try await query(
            """
            SELECT task, rule, key, max_running, running, waiting
            FROM sluice.concurrency_status WHERE $1::text IS NULL OR task = $1
            ORDER BY task, rule, key
            """, [task])
        return try rows.map { row in
            ConcurrencyStatus(
                task: try row.decode(String.self, at: 0), rule: try row.decode(Int.self, at: 1),
                key: try row.decode(String.self, at: 2), maxRunning: try row.decode(Int.self, at: 3),
                running: try row.decode(Int.self, at: 4), waiting: try row.decode(Int.self, at: 5))
        }
    }
}
