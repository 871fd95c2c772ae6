import Foundation
import Sluice
import SluiceCoordinator
import SluicePostgres

/// `coordinator`: runs the coordinator until SIGINT or SIGTERM.
enum CoordinatorCommand {
    static func run(_ context: CommandContext) async throws -> ExitCode {
        let limit = try context.integer("tick-limit", default: 1000, in: 1...100_000)!
        // Fail fast with exit code 4 when the database is unreachable at start; later outages
        // are retried by the coordinator.
        _ = try await context.withConnection { connection in try await connection.execute("SELECT 1") }
        let logger = StandardErrorLogger(minimumLevel: context.parsed.flag("verbose") ? .debug : .info)
        try await runUntilSignal(
            connectionString: context.connectionString, options: CoordinatorOptions(tickLimit: limit), logger: logger)
        return .success
    }

    /// Runs a coordinator until SIGINT or SIGTERM, then waits for it to release the lock.
    static func runUntilSignal(
        connectionString: String?, options: CoordinatorOptions, logger: any SluiceLogger
    ) async throws {
        let coordinator = Coordinator(connectionString: connectionString, options: options, logger: logger)
        let signals = SignalWaiter { signalNumber in
            logger.info("stopping on signal", ["signal": signalNumber == SIGINT ? "SIGINT" : "SIGTERM"])
            coordinator.stop()
        }
        await coordinator.run()
        signals.cancel()
    }
}
