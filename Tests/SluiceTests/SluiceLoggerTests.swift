import Foundation
import Testing

@testable import Sluice

/// Level checks of the loggers, and the metadata that the convenience methods build lazily.
@Suite struct SluiceLoggerTests {
    /// A logger that records events at `minimumLevel` and above, and reports that level through
    /// `isEnabled`.
    final class LevelLogger: SluiceLogger, @unchecked Sendable {
        // @unchecked: `messages` is guarded by `lock`.
        let minimumLevel: LogLevel
        private let lock = NSLock()
        private var storedMessages: [String] = []

        init(minimumLevel: LogLevel) {
            self.minimumLevel = minimumLevel
        }

        var messages: [String] {
            lock.lock()
            defer { lock.unlock() }
            return storedMessages
        }

        func isEnabled(_ level: LogLevel) -> Bool {
            level >= minimumLevel
        }

        func log(level: LogLevel, message: String, metadata: [String: String]) {
            lock.lock()
            storedMessages.append(message)
            lock.unlock()
        }
    }

    /// Counts how often metadata is built.
    final class MetadataCounter: @unchecked Sendable {
        // @unchecked: `count` is guarded by `lock`.
        private let lock = NSLock()
        private var storedCount = 0

        var count: Int {
            lock.lock()
            defer { lock.unlock() }
            return storedCount
        }

        func metadata() -> [String: String] {
            lock.lock()
            storedCount += 1
            lock.unlock()
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
