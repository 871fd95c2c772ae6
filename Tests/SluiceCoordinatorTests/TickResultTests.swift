import Testing

@testable import SluiceCoordinator

@Suite struct TickResultTests {
    @Test func reachedLimitChecksEveryCount() {
        let result = TickResult(counts: ["promoted": 3, "expired": 10], secondsUntilDue: nil)
        #expect(result.reachedLimit(10))
        #expect(!result.reachedLimit(11))
    }

    @Test func totalSumsCounts() {
        let result = TickResult(counts: ["promoted": 3, "expired": 10, "timed_out": 1], secondsUntilDue: 2)
        #expect(result.total == 14)
    }

    @Test func emptyResultIsIdle() {
        let result = TickResult(counts: [:], secondsUntilDue: nil)
        #expect(!result.reachedLimit(1))
        #expect(result.total == 0)
    }
}
