import Testing

@testable import Sluice

/// Level checks of the loggers, and the metadata that the convenience methods build lazily.
@Suite struct SluiceLoggerTests {
    /// A `CapturingLogger` that records events at `minimumLevel` and above, and reports that
    /// level through `isEnabled`.
    struct LevelLogger: SluiceLogger {
        let minimumLevel: LogLevel
        let captured = CapturingLogger()

        var messages: [String] {
            captured.events.map(\.message)
        }

        func isEnabled(_ level: LogLevel) -> Bool {
            level >= minimumLevel
        }

        func log(level: LogLevel, message: String, metadata: [String: String]) {
            captured.log(level: level, message: message, metadata: metadata)
        }
    }

    /// Counts how often metadata is built. The tests call it on one thread only.
    final class MetadataCounter {
        private(set) var count = 0

        func metadata() -> [String: String] {
            count += 1
            return ["run_id": "1"]
        }
    }

    @Test func disabledLevelSkipsMetadata() {
        let logger = LevelLogger(minimumLevel: .info)
        let counter = MetadataCounter()

        logger.debug("run started", counter.metadata())

        #expect(counter.count == 0)
        #expect(logger.messages.isEmpty)
    }

    @Test func enabledLevelsBuildMetadataOnce() {
        let logger = LevelLogger(minimumLevel: .info)
        let counter = MetadataCounter()

        logger.info("worker registered", counter.metadata())
        logger.warning("attempt failed", counter.metadata())
        logger.error("database call failed", counter.metadata())

        #expect(counter.count == 3)
        #expect(logger.messages == ["worker registered", "attempt failed", "database call failed"])
    }

    @Test func noOpLoggerEnablesNoLevel() {
        let logger = NoOpLogger()
        let counter = MetadataCounter()

        logger.error("database call failed", counter.metadata())

        #expect(counter.count == 0)
        for level in [LogLevel.debug, .info, .warning, .error] {
            #expect(!logger.isEnabled(level))
        }
    }

    @Test func standardErrorLoggerFollowsMinimumLevel() {
        let logger = StandardErrorLogger(minimumLevel: .warning)

        #expect(!logger.isEnabled(.debug))
        #expect(!logger.isEnabled(.info))
        #expect(logger.isEnabled(.warning))
        #expect(logger.isEnabled(.error))
    }

    @Test func loggerWithoutLevelCheckRecordsEverything() {
        let logger = CapturingLogger()
        let counter = MetadataCounter()

        logger.debug("run started", counter.metadata())

        #expect(counter.count == 1)
        #expect(logger.events.map(\.message) == ["run started"])
    }
}
