import SluicePostgres
import SluiceTestSupport
import Testing

/// Returns the next event, or nil when the stream ends.
private func nextEvent(
    _ iterator: inout AsyncStream<PostgresListenerEvent>.AsyncIterator
) async -> PostgresListenerEvent? {
    await iterator.next()
}

@Suite struct ListenerTests {
    @Test func notificationArrivesWithChannelAndPayload() async throws {
        let database = try await TestPostgres.shared.makeDatabase(withExtension: false)
        let listener = try await PostgresListener.start(database.connectionString, channels: ["jobs ready"])
        var events = listener.notifications.makeAsyncIterator()
        let sender = try await database.connect()

        try await sender.execute("SELECT pg_notify($1, $2)", ["jobs ready", "payload ü"])
        let event = await nextEvent(&events)
        guard case .notification(let channel, let payload, let processID) = event else {
            Issue.record("expected a notification, got \(String(describing: event))")
            return
        }
        #expect(channel == "jobs ready")
        #expect(payload == "payload ü")
        #expect(processID == (try await sender.backendProcessID()))

        try await listener.listen("second")
        try await listener.unlisten("jobs ready")
        try await sender.execute("SELECT pg_notify('jobs ready', 'ignored')")
        try await sender.execute("NOTIFY second, 'after listen'")
        #expect(await nextEvent(&events) == .notification(channel: "second", payload: "after listen", processID: processID))

        listener.close()
        #expect(await nextEvent(&events) == nil)
        await #expect(throws: PostgresError.self) { try await listener.listen("late") }
        await sender.close()
    }

    @Test func serverRestartYieldsReconnected() async throws {
        let server = try await TestPostgres.offCooperativePool { try TestPostgres.shared.makeDedicatedServer() }
        let policy = ReconnectPolicy(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(200), maximumAttempts: nil)
        let listener = try await PostgresListener.start(
            server.connectionString, channels: ["events"], reconnectPolicy: policy)
        var events = listener.notifications.makeAsyncIterator()

        try await TestPostgres.offCooperativePool { try server.restart(mode: .fast) }
        #expect(await nextEvent(&events) == .reconnected)

        let sender = try await PostgresConnection.connect(server.connectionString)
        try await sender.execute("NOTIFY events, 'after restart'")
        let event = await nextEvent(&events)
        guard case .notification(let channel, let payload, _) = event else {
            Issue.record("expected a notification, got \(String(describing: event))")
            return
        }
        #expect(channel == "events")
        #expect(payload == "after restart")

        listener.close()
        await sender.close()
        try await TestPostgres.offCooperativePool { try server.stop(mode: .immediate) }
    }
}
