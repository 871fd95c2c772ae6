import Foundation
import Sluice
import SluicePostgres
import Testing

@Suite struct SluiceClientTests {
    static let add = Sluice.task("add", retries: .none, timeout: .seconds(10)) { (input: Numbers, _: TaskContext) in
        Sum(sum: input.a + input.b)
    }

    static let echo = Sluice.task("echo", retries: .none, timeout: .seconds(30)) { (input: Blob, _: TaskContext) in
        Sum(sum: input.text.utf8.count)
    }

    @Test func enqueueAndAwaitTypedResult() async throws {
        let fixture = try await SluiceFixture.make()
        let worker = Worker(client: fixture.client, name: "adder", slots: 2, tasks: [Self.add], handleSignals: false)
        let running = fixture.start(worker)

        try await fixture.client.define(Self.add)
        let run = try await fixture.client.enqueue(Self.add, Numbers(a: 2, b: 40))
        let result = try await run.result(timeout: .seconds(10))
        #expect(result == Sum(sum: 42))
        #expect(try await run.status() == .succeeded)

        worker.shutdown()
        try await running.value
        await fixture.close()
    }

    @Test func idempotencyKeyReturnsSameRun() async throws {
        let fixture = try await SluiceFixture.make()
        try await fixture.client.define(Self.add)
        let options = EnqueueOptions(idempotencyKey: "order-42")
        let first = try await fixture.client.enqueue(Self.add, Numbers(a: 1, b: 1), options: options)
        let second = try await fixture.client.enqueue(Self.add, Numbers(a: 5, b: 5), options: options)
        #expect(first.id == second.id)
        await fixture.close()
    }

    @Test func unknownTaskIsSL001() async throws {
        let fixture = try await SluiceFixture.make()
        let error = await #expect(throws: SluiceError.self) {
            _ = try await fixture.client.enqueue(Self.add, Numbers(a: 1, b: 2))
        }
        #expect(error?.code == .unknownTask)
        #expect(error?.code.rawValue == "SL001")
        await fixture.close()
    }

    @Test func nonObjectInputRejected() async throws {
        let fixture = try await SluiceFixture.make()
        let listTask = Sluice.task("list") { (_: [Int], _: TaskContext) in Empty() }
        try await fixture.client.define(listTask)
        let error = await #expect(throws: SluiceError.self) {
            _ = try await fixture.client.enqueue(listTask, [1, 2, 3])
        }
        #expect(error?.code == .invalidPayload)
        #expect(error?.message.contains("JSON object") == true)
        await fixture.close()
    }

    @Test func nulInInputRejected() async throws {
        let fixture = try await SluiceFixture.make()
        try await fixture.client.define(Self.echo)
        let error = await #expect(throws: SluiceError.self) {
            _ = try await fixture.client.enqueue(Self.echo, Blob(text: "a\u{0}b"))
        }
        #expect(error?.code == .invalidPayload)
        #expect(error?.message.contains("NUL") == true)
        // A backslash followed by u0000 is ordinary text, not a NUL character.
        let run = try await fixture.client.enqueue(Self.echo, Blob(text: "a\\u0000b"))
        #expect(try await run.status() == .queued)
        await fixture.close()
    }

    @Test func fiveMegabyteInputReachesWorker() async throws {
        let fixture = try await SluiceFixture.make()
        let text = String(repeating: "x", count: 5 * 1024 * 1024)
        try await fixture.client.define(Self.echo)
        let run = try await fixture.client.enqueue(Self.echo, Blob(text: text))
        let worker = Worker(client: fixture.client, name: "echo", slots: 1, tasks: [Self.echo], handleSignals: false)
        let running = fixture.start(worker)
        #expect(try await run.result(timeout: .seconds(20)) == Sum(sum: text.utf8.count))
        worker.shutdown()
        try await running.value
        await fixture.close()
    }

    @Test func seventeenMegabyteInputIsSL002() async throws {
        let fixture = try await SluiceFixture.make()
        try await fixture.client.define(Self.echo)
        // Random hex does not compress, so the stored jsonb stays above the 16 MiB limit.
        var generator = SystemRandomNumberGenerator()
        let text = (0..<(17 * 1024 * 1024 / 16)).map { _ in String(format: "%016llx", generator.next() as UInt64) }
            .joined()
        let error = await #expect(throws: SluiceError.self) {
            _ = try await fixture.client.enqueue(Self.echo, Blob(text: text))
        }
        #expect(error?.code == .invalidPayload)
        await fixture.close()
    }

    @Test func runInfoOfUnknownIdIsSL003() async throws {
        let fixture = try await SluiceFixture.make()
        let error = await #expect(throws: SluiceError.self) {
            _ = try await fixture.client.runInfo(987_654)
        }
        #expect(error?.code == .runNotFound)
        #expect(error?.runID == 987_654)
        await fixture.close()
    }

    @Test func invalidTaskNameRejectedLocally() async throws {
        let fixture = try await SluiceFixture.make()
        let bad = Sluice.task("bad name!") { (_: Empty, _: TaskContext) in Empty() }
        let error = await #expect(throws: SluiceError.self) {
            try await fixture.client.define(bad)
        }
        #expect(error?.code == .invalidOption)
        let badRetries = Sluice.task("fine", retries: .exponential(maxAttempts: 0)) { (_: Empty, _: TaskContext) in }
        let retriesError = await #expect(throws: SluiceError.self) {
            try await fixture.client.define(badRetries)
        }
        #expect(retriesError?.message.contains("retries.maxAttempts") == true)
        await fixture.close()
    }

    @Test func enqueueManyInCallerTransaction() async throws {
        let fixture = try await SluiceFixture.make()
        try await fixture.client.define(Self.add)
        let connection = try await fixture.database.connect()
        let handles = try await connection.transaction { transaction in
            try await fixture.client.enqueueMany(
                Self.add, [Numbers(a: 1, b: 2), Numbers(a: 3, b: 4)], on: transaction)
        }
        #expect(handles.count == 2)
        let rolledBack = try? await connection.transaction { transaction -> [RunHandle<Sum>] in
            _ = try await fixture.client.enqueueMany(Self.add, [Numbers(a: 9, b: 9)], on: transaction)
            throw CancellationError()
        }
        #expect(rolledBack == nil)
        let count = try await fixture.sql.query("SELECT count(*)::int FROM sluice.runs")[0].decode(Int.self, at: 0)
        #expect(count == 2)
        await connection.close()
        await fixture.close()
    }
}
