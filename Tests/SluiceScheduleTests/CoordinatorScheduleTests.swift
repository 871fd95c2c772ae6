import Foundation
import Sluice
import SluiceCoordinator
import SluicePostgres
import SluiceTestSupport
import Testing

/// Cron schedules fired by real coordinators against a database from `TestPostgres`.
///
/// The every-second schedule fires for a minute under two, then three coordinators, with two
/// leadership changes and the catch-up after each.
@Suite(.timeLimit(.minutes(2))) struct CoordinatorScheduleTests {
    /// Options that keep takeover and reconnects quick in tests.
    static let fastOptions = CoordinatorOptions(
        leadershipRetryInterval: .milliseconds(200),
        reconnectPolicy: ReconnectPolicy(
            initialDelay: .milliseconds(50), maximumDelay: .milliseconds(500), maximumAttempts: nil))

    /// Returns each fire time of `schedule` as whole seconds after `first`, in order.
    static func fireOffsets(_ connection: PostgresConnection, schedule: String, from first: Date) async throws -> [Int] {
        let rows = try await connection.query(
            "SELECT extract(epoch FROM fire_at - $2::timestamptz)::integer FROM sluice.schedule_fires "
                + "WHERE schedule = $1 ORDER BY fire_at",
            [schedule, first])
        return try rows.map { try $0.decode(Int.self, at: 0) }
    }

    @Test func everySecondFiresOnceAcrossTakeovers() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let observer = try await database.connect()
        try await observer.execute("SELECT sluice.define_task('heartbeat')")
        // 'all', because with 'latest' a takeover longer than one second would skip fire times.
        let firstFire = try await observer.query(
            "SELECT sluice.create_schedule('every-second', '* * * * * *', 'heartbeat', missed => 'all')"
        )[0].decode(Date.self, at: 0)

        let coordinators = (0..<3).map { _ in
            Coordinator(connectionString: database.connectionString, options: Self.fastOptions, logger: NoOpLogger())
        }
        var runs = coordinators.prefix(2).map { coordinator in Task { await coordinator.run() } }
        try await waitUntil("one coordinator leads") { coordinators[0].isLeader || coordinators[1].isLeader }
        try await Task.sleep(for: .seconds(20))

        // Takeover 1: the leader's session is terminated, and the other coordinator takes the lock.
        let holders = try await advisoryLockHolders(observer, keys: Coordinator.lockKeys)
        try #require(holders.count == 1)
        try await observer.execute("SELECT pg_terminate_backend($1)", [holders[0]])
        try await waitUntil("a new session holds the lock") {
            let now = try await advisoryLockHolders(observer, keys: Coordinator.lockKeys)
            return now.count == 1 && now[0] != holders[0]
        }
        try await Task.sleep(for: .seconds(20))

        // Takeover 2: the current leader's task is cancelled, and a third coordinator joins.
        runs.append(Task { await coordinators[2].run() })
        try await waitUntil("exactly one coordinator reports leading") {
            coordinators.filter(\.isLeader).count == 1
        }
        let leaderIndex = try #require(coordinators.firstIndex { $0.isLeader })
        runs[leaderIndex].cancel()
        await runs[leaderIndex].value
        try await waitUntil("another coordinator leads") {
            coordinators.enumerated().contains { index, coordinator in index != leaderIndex && coordinator.isLeader }
        }
        try await Task.sleep(for: .seconds(20))

        for (index, run) in runs.enumerated() where index != leaderIndex {
            coordinators[index].stop()
            await run.value
        }
        let stoppedAt = try await observer.query("SELECT sluice.now()")[0].decode(Date.self, at: 0)

        // Every second from the first fire time to the last has exactly one fire row.
        let offsets = try await Self.fireOffsets(observer, schedule: "every-second", from: firstFire)
        #expect(offsets.count >= 58)
        #expect(offsets == Array(0..<offsets.count))
        // The last fire time is less than 1.5 seconds before the coordinators stopped.
        let lastFire = firstFire.addingTimeInterval(Double(offsets.last ?? 0))
        #expect(stoppedAt.timeIntervalSince(lastFire) < 1.5)

        // Exactly one run per fire time, and each fire row names its run.
        let counts = try await observer.query(
            """
            SELECT (SELECT count(*) FROM sluice.runs WHERE task = 'heartbeat'),
                   (SELECT count(DISTINCT metadata ->> 'fire_at') FROM sluice.runs WHERE task = 'heartbeat'),
                   (SELECT count(*) FROM sluice.schedule_fires f JOIN sluice.runs r ON r.id = f.run_id
                    WHERE (r.metadata ->> 'fire_at')::timestamptz = f.fire_at)
            """)[0]
        #expect(try counts.decode(Int.self, at: 0) == offsets.count)
        #expect(try counts.decode(Int.self, at: 1) == offsets.count)
        #expect(try counts.decode(Int.self, at: 2) == offsets.count)
        await observer.close()
    }

    @Test func restartAppliesMissedFirePolicies() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let observer = try await database.connect()
        try await observer.execute("SELECT sluice.define_task('report')")

        // A coordinator leads and stops. While it is away, five fire times pass.
        let first = Coordinator(connectionString: database.connectionString, options: Self.fastOptions, logger: NoOpLogger())
        let firstRun = Task { await first.run() }
        try await waitUntil("the first coordinator leads") { first.isLeader }
        first.stop()
        await firstRun.value

        for policy in MissedFirePolicy.allCases {
            try await observer.execute(
                "SELECT sluice.create_schedule($1, '* * * * *', 'report', jsonb_build_object('policy', $2::text), "
                    + "missed => $2)",
                ["catch-up-\(policy.rawValue)", policy.rawValue])
        }
        let firstFire = try await observer.query(
            "SELECT next_fire_at FROM sluice.schedules WHERE name = 'catch-up-all'")[0].decode(Date.self, at: 0)
        // New sessions of this database see a clock 30 seconds past the fifth fire time.
        let offset = try await observer.query(
            "SELECT ($1::timestamptz - now() + interval '4 minutes 30 seconds')::text", [firstFire]
        )[0].decode(String.self, at: 0)
        let quotedName = try await observer.escapeIdentifier(database.name)
        try await observer.execute("ALTER DATABASE \(quotedName) SET sluice.clock_offset = '\(offset)'")

        let second = Coordinator(connectionString: database.connectionString, options: Self.fastOptions, logger: NoOpLogger())
        let secondRun = Task { await second.run() }
        try await waitUntil("the restarted coordinator fired the catch-up") {
            let rows = try await observer.query("SELECT count(*) FROM sluice.schedule_fires")
            return try rows[0].decode(Int.self, at: 0) >= 6
        }
        // A few more ticks must not fire anything else before the sixth fire time.
        try await Task.sleep(for: .milliseconds(500))
        second.stop()
        await secondRun.value

        #expect(try await Self.fireOffsets(observer, schedule: "catch-up-latest", from: firstFire) == [240])
        #expect(try await Self.fireOffsets(observer, schedule: "catch-up-all", from: firstFire) == [0, 60, 120, 180, 240])
        #expect(try await Self.fireOffsets(observer, schedule: "catch-up-skip", from: firstFire).isEmpty)
        let nextFires = try await observer.query(
            "SELECT count(*) FROM sluice.schedules WHERE next_fire_at = $1::timestamptz + interval '5 minutes'",
            [firstFire])
        #expect(try nextFires[0].decode(Int.self, at: 0) == 3)
        await observer.close()
    }
}
