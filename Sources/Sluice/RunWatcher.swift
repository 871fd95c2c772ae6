import Foundation
import SluicePostgres

/// Delivers `sluice_finished` notifications to the callers waiting for runs.
///
/// One `PostgresListener` per client, started on first use. Each waiter gets a stream that
/// receives a signal when its run's notification arrives and after every listener reconnect,
/// because notifications sent while the listener was down are lost. A signal means "check
/// the status again", not "the run finished".
actor RunWatcher {
    private let connectionString: String?
    private let logger: any SluiceLogger
    private var listener: PostgresListener?
    private var starting: Task<PostgresListener, Error>?
    private var waiters: [Int64: [UUID: AsyncStream<Void>.Continuation]] = [:]

    init(connectionString: String?, logger: any SluiceLogger) {
        self.connectionString = connectionString
        self.logger = logger
    }

    /// Registers a waiter for `runID` and returns its token and signal stream. The listener is
    /// listening on `sluice_finished` when this returns, so a `watch_run` after it cannot miss
    /// the notification.
    func subscribe(runID: Int64) async throws -> (token: UUID, signals: AsyncStream<Void>) {
        try await startListener()
        let (signals, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let token = UUID()
        waiters[runID, default: [:]][token] = continuation
        return (token, signals)
    }

    /// Removes a waiter.
    func unsubscribe(runID: Int64, token: UUID) {
        waiters[runID]?.removeValue(forKey: token)?.finish()
        if waiters[runID]?.isEmpty == true {
            waiters.removeValue(forKey: runID)
        }
    }

    /// Stops the listener and ends every waiter's stream.
    func close() {
        listener?.close()
        listener = nil
        starting?.cancel()
        for continuation in waiters.values.flatMap(\.values) {
            continuation.finish()
        }
        waiters.removeAll()
    }

    private func startListener() async throws {
        if listener != nil {
            return
        }
        if starting == nil {
            starting = Task { [connectionString] in
                try await PostgresListener.start(
                    connectionString, channels: ["sluice_finished"], applicationName: "sluice-client")
            }
        }
        do {
            let started = try await starting!.value
            if listener == nil {
                listener = started
                Task { await self.consume(started.notifications) }
            }
        } catch {
            starting = nil
            throw SluiceError.from(error)
        }
    }

    private func consume(_ events: AsyncStream<PostgresListenerEvent>) async {
        for await event in events {
            switch event {
            case .notification(_, let payload, _):
                if let runID = Int64(payload) {
                    signal(runID: runID)
                }
            case .reconnected:
                logger.info("result listener reconnected; checking every awaited run again")
                for runID in waiters.keys {
                    signal(runID: runID)
                }
            }
        }
    }

    private func signal(runID: Int64) {
        for continuation in waiters[runID]?.values ?? [:].values {
            continuation.yield()
        }
    }
}
