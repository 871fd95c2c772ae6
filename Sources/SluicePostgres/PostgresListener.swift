import CLibPQ
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Receives PostgreSQL notifications (LISTEN/NOTIFY) on a connection of its own.
///
/// A dedicated thread waits on the connection's socket with `poll()`, reads input with
/// PQconsumeInput and delivers each notification to `notifications`. When the connection is
/// lost, the thread reconnects following `reconnectPolicy`, listens on every channel again and
/// delivers `.reconnected`. A self-pipe wakes the thread for `listen`, `unlisten` and `close`.
///
/// The stream buffers without limit, so consume it steadily. Call `close()` when done: the
/// thread keeps the listener alive until then.
public final class PostgresListener: @unchecked Sendable {
    // @unchecked: `pendingCommands` and `isClosing` are guarded by `lock`; `connection` and
    // `channels` are used only on the listener thread after `start` returns.

    /// The events: notifications, and `.reconnected` after each reconnect. Finishes after
    /// `close()`, or when reconnecting gives up under a policy with `maximumAttempts`.
    public let notifications: AsyncStream<PostgresListenerEvent>

    /// The backoff for reconnecting.
    public let reconnectPolicy: ReconnectPolicy

    private enum Command {
        case listen(String, CheckedContinuation<Void, Error>)
        case unlisten(String, CheckedContinuation<Void, Error>)
    }

    private let connectionString: String?
    private let applicationName: String?
    private let continuation: AsyncStream<PostgresListenerEvent>.Continuation
    private let wakeReadDescriptor: Int32
    private let wakeWriteDescriptor: Int32

    private let lock = NSLock()
    private var pendingCommands: [Command] = []
    private var isClosing = false

    private var connection: LibPQConnection?
    private var channels: Set<String>

    private init(
        connectionString: String?, applicationName: String?, channels: Set<String>,
        reconnectPolicy: ReconnectPolicy, wakeDescriptors: (read: Int32, write: Int32)
    ) {
        self.connectionString = connectionString
        self.applicationName = applicationName
        self.channels = channels
        self.reconnectPolicy = reconnectPolicy
        (wakeReadDescriptor, wakeWriteDescriptor) = wakeDescriptors
        (notifications, continuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    /// Connects, listens on `channels` and starts the listener thread.
    ///
    /// - Parameters:
    ///   - connectionString: as for `PostgresConnection.connect`; nil uses libpq's environment
    ///     variables. Default nil.
    ///   - channels: the channels to listen on from the start; default none.
    ///   - applicationName: the `application_name` of the listener's session; default nil.
    ///   - reconnectPolicy: the backoff for reconnecting; default 50 ms doubling up to 2 s,
    ///     retrying forever.
    /// - Throws: `PostgresError` when the first connection or a LISTEN fails; the first
    ///   connection is not retried.
    public static func start(
        _ connectionString: String? = nil, channels: [String] = [], applicationName: String? = nil,
        reconnectPolicy: ReconnectPolicy = ReconnectPolicy(maximumAttempts: nil)
    ) async throws -> PostgresListener {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else {
            throw PostgresError(
                kind: .connectionFailed,
                message: "could not create the listener's wake pipe: \(String(cString: strerror(errno)))")
        }
        _ = fcntl(descriptors[0], F_SETFL, O_NONBLOCK)
        _ = fcntl(descriptors[1], F_SETFL, O_NONBLOCK)
        let listener = PostgresListener(
            connectionString: connectionString, applicationName: applicationName,
            channels: Set(channels), reconnectPolicy: reconnectPolicy,
            wakeDescriptors: (descriptors[0], descriptors[1]))

        try await withCheckedThrowingContinuation { (started: CheckedContinuation<Void, Error>) in
            let thread = Thread {
                do {
                    try listener.connectAndListen()
                } catch {
                    listener.releaseResources()
                    started.resume(throwing: error)
                    return
                }
                started.resume()
                listener.run()
            }
            thread.name = "sluice.postgres.listener"
            thread.start()
        }
        return listener
    }

    /// Starts listening on `channel` and returns once the server has run LISTEN. While the
    /// connection is down it returns at once, and LISTEN runs after reconnecting.
    public func listen(_ channel: String) async throws {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.listen(channel, continuation), orFail: continuation)
        }
    }

    /// Stops listening on `channel`.
    public func unlisten(_ channel: String) async throws {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.unlisten(channel, continuation), orFail: continuation)
        }
    }

    /// Stops the thread, closes the connection and finishes `notifications`. Returns without
    /// waiting for the thread. Safe to call more than once.
    public func close() {
        lock.lock()
        isClosing = true
        lock.unlock()
        wake()
    }

    private func enqueue(_ command: Command, orFail continuation: CheckedContinuation<Void, Error>) {
        lock.lock()
        if isClosing {
            lock.unlock()
            continuation.resume(throwing: PostgresError(kind: .closed, message: "the listener was closed by close()"))
            return
        }
        pendingCommands.append(command)
        lock.unlock()
        wake()
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWriteDescriptor, &byte, 1)
    }

    // MARK: Listener thread

    /// Opens the connection and listens on every channel. Runs on the listener thread.
    private func connectAndListen() throws {
        let opened = try LibPQConnection.open(connectionString: connectionString, applicationName: applicationName)
        for channel in channels.sorted() {
            try runListenCommand("LISTEN", channel, on: opened)
        }
        connection = opened
    }

    private func runListenCommand(_ command: String, _ channel: String, on connection: LibPQConnection) throws {
        let sql = "\(command) \(try connection.escapeIdentifier(channel))"
        _ = try connection.execute(EncodedStatement(sql: sql, parameters: []))
    }

    /// The thread's main loop: runs commands, delivers notifications and reconnects.
    private func run() {
        while true {
            lock.lock()
            let closing = isClosing
            let commands = pendingCommands
            pendingCommands.removeAll()
            lock.unlock()
            if closing {
                for command in commands {
                    fail(command, with: PostgresError(kind: .closed, message: "the listener was closed by close()"))
                }
                break
            }
            for command in commands {
                perform(command)
            }

            guard let connection else {
                if !reconnect() {
                    break
                }
                continue
            }
            deliverNotifications(from: connection)
            waitForInput(on: connection)
        }
        releaseResources()
    }

    private func perform(_ command: Command) {
        let (sqlCommand, channel, continuation): (String, String, CheckedContinuation<Void, Error>)
        switch command {
        case .listen(let name, let waiting):
            channels.insert(name)
            (sqlCommand, channel, continuation) = ("LISTEN", name, waiting)
        case .unlisten(let name, let waiting):
            channels.remove(name)
            (sqlCommand, channel, continuation) = ("UNLISTEN", name, waiting)
        }
        guard let connection else {
            continuation.resume()
            return
        }
        do {
            try runListenCommand(sqlCommand, channel, on: connection)
            continuation.resume()
        } catch let error as PostgresError where error.isConnectionError || !connection.isOK {
            // The channel set is applied again after reconnecting.
            self.connection = nil
            continuation.resume()
        } catch {
            if sqlCommand == "LISTEN" {
                channels.remove(channel)
            }
            continuation.resume(throwing: error)
        }
    }

    private func fail(_ command: Command, with error: PostgresError) {
        switch command {
        case .listen(_, let continuation), .unlisten(_, let continuation):
            continuation.resume(throwing: error)
        }
    }

    private func deliverNotifications(from connection: LibPQConnection) {
        while let notification = PQnotifies(connection.handle) {
            let event = PostgresListenerEvent.notification(
                channel: String(cString: notification.pointee.relname),
                payload: String(cString: notification.pointee.extra),
                processID: notification.pointee.be_pid)
            PQfreemem(notification)
            continuation.yield(event)
        }
    }

    /// Waits until the socket or the wake pipe is readable, then reads the input.
    private func waitForInput(on connection: LibPQConnection) {
        var descriptors = [
            pollfd(fd: PQsocket(connection.handle), events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeReadDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        let ready = poll(&descriptors, 2, -1)
        guard ready > 0 else {
            return  // EINTR: loop again.
        }
        if descriptors[1].revents != 0 {
            drainWakePipe()
        }
        if descriptors[0].revents != 0 {
            if PQconsumeInput(connection.handle) == 0 || !connection.isOK {
                deliverNotifications(from: connection)
                self.connection = nil
            }
        }
    }

    /// Reconnects with backoff and delivers `.reconnected`; returns false when closing or when
    /// the policy gives up.
    private func reconnect() -> Bool {
        var backoff = ReconnectBackoff(policy: reconnectPolicy)
        while true {
            do {
                try connectAndListen()
                continuation.yield(.reconnected)
                return true
            } catch {
                connection = nil
                guard case .retry(let delay) = backoff.recordFailure() else {
                    return false
                }
                if sleepUnlessWoken(for: delay) {
                    return true  // Woken for a command or close; the main loop handles it.
                }
            }
        }
    }

    /// Sleeps for `delay` unless the wake pipe becomes readable first; returns whether it did.
    private func sleepUnlessWoken(for delay: Duration) -> Bool {
        var descriptor = pollfd(fd: wakeReadDescriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(min(ReconnectPolicy.seconds(delay) * 1000, Double(Int32.max)))
        guard poll(&descriptor, 1, milliseconds) > 0 else {
            return false
        }
        drainWakePipe()
        return true
    }

    private func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeReadDescriptor, &buffer, buffer.count) > 0 {}
    }

    /// Closes the connection and finishes the stream. The pipe stays open until `deinit`,
    /// because `close()` may still write to it from another thread.
    private func releaseResources() {
        connection = nil
        continuation.finish()
    }

    deinit {
        Glibc.close(wakeReadDescriptor)
        Glibc.close(wakeWriteDescriptor)
    }
}
