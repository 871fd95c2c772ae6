/// A fixed-size pool of `PostgresConnection`s for callers that each need a connection to
/// themselves for a short time, such as a transaction.
///
/// Connections open lazily up to `maximumConnections`. When all are in use, `withConnection`
/// waits in arrival order. A lost connection stays in the pool because it reconnects on its next
/// call.
public actor PostgresConnectionPool {
    /// The maximum number of open connections.
    public let maximumConnections: Int

    private let connectionString: String?
    private let applicationName: String?
    private let reconnectPolicy: ReconnectPolicy
    private var idleConnections: [PostgresConnection] = []
    private var openConnectionCount = 0
    private var waiters: [CheckedContinuation<PostgresConnection, Error>] = []
    private var isClosed = false

    /// Creates an empty pool; connections open on first use.
    ///
    /// - Parameters:
    ///   - connectionString: as for `PostgresConnection.connect`; default nil (environment).
    ///   - maximumConnections: the maximum number of open connections, at least 1; default 4.
    ///   - applicationName: the `application_name` of each session; default nil.
    ///   - reconnectPolicy: the backoff each connection uses after a lost connection.
    public init(
        _ connectionString: String? = nil, maximumConnections: Int = 4, applicationName: String? = nil,
        reconnectPolicy: ReconnectPolicy = .default
    ) {
        precondition(maximumConnections >= 1, "maximumConnections must be at least 1, got \(maximumConnections)")
        self.connectionString = connectionString
        self.maximumConnections = maximumConnections
        self.applicationName = applicationName
        self.reconnectPolicy = reconnectPolicy
    }

    /// Runs `body` with a connection that no other caller uses until `body` returns.
    ///
    /// - Throws: `.closed` after `close()`, the connect error when a new connection fails, or
    ///   what `body` throws.
    public func withConnection<Value: Sendable>(
        _ body: @Sendable (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            await release(connection)
            return value
        } catch {
            await release(connection)
            throw error
        }
    }

    /// Closes the idle connections and rejects later requests; connections in use close when
    /// they are returned. Waiting callers get `.closed`.
    public func close() async {
        isClosed = true
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting {
            waiter.resume(throwing: Self.closedError)
        }
        let idle = idleConnections
        idleConnections.removeAll()
        for connection in idle {
            await connection.close()
        }
    }

    private static let closedError = PostgresError(kind: .closed, message: "the pool was closed by close()")

    private func acquire() async throws -> PostgresConnection {
        if isClosed {
            throw Self.closedError
        }
        if let connection = idleConnections.popLast() {
            return connection
        }
        if openConnectionCount < maximumConnections {
            openConnectionCount += 1
            do {
                return try await PostgresConnection.connect(
                    connectionString, applicationName: applicationName, reconnectPolicy: reconnectPolicy)
            } catch {
                openConnectionCount -= 1
                throw error
            }
        }
        return try await withCheckedThrowingContinuation { continuation in
            waiters.append(continuation)
        }
    }

    private func release(_ connection: PostgresConnection) async {
        if isClosed {
            openConnectionCount -= 1
            await connection.close()
            return
        }
        if waiters.isEmpty {
            idleConnections.append(connection)
        } else {
            waiters.removeFirst().resume(returning: connection)
        }
    }
}
