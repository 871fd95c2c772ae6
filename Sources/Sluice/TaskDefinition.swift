import Foundation
import SluicePostgres

/// A task declared in code: its name, its options and its typed handler.
///
/// Create one with `Sluice.task(_:queue:retries:...:handler:)`, pass
/// it to `SluiceClient.enqueue` to start runs and to `Worker` to execute them.
public struct TaskDefinition<Input: Codable & Sendable, Output: Codable & Sendable>: AnyTaskDefinition {
    /// The handler's signature: the decoded input and the attempt's context in, the output out.
    public typealias Handler = @Sendable (Input, TaskContext) async throws -> Output

    /// The task name, unique in the database.
    public let name: String
    /// The options sent to `sluice.define_task`.
    public let options: TaskOptions

    let handler: Handler

    init(name: String, options: TaskOptions, handler: @escaping Handler) {
        self.name = name
        self.options = options
        self.handler = handler
    }

    public func validate() throws {
        try Validation.checkName("task name", name)
        try options.validate()
    }

    public var executor: TaskExecutor {
        // One decoder for every run of the task, because creating one per run was a visible
        // share of a busy worker's CPU. JSONDecoder guards its options with a lock, so handlers
        // may decode with it at the same time.
        let decoder = JSONDecoder()
        return TaskExecutor { [handler, name] inputJSON, context in
            let input: Input
            do {
                input = try decoder.decode(Input.self, from: Data(inputJSON.utf8))
            } catch {
                throw NonRetryable(
                    SluiceError(
                        code: .encoding,
                        message: "invalid input for task \(name): it does not decode as \(Input.self): \(error)",
                        runID: context.runID))
            }
            let output = try await handler(input, context)
            do {
                return try JSONPayload.encode(output, what: "output of task \(name)")
            } catch {
                throw NonRetryable(error)
            }
        }
    }
}

/// A task of any input and output type, so that a `Worker` can take a list of them.
public protocol AnyTaskDefinition: Sendable {
    /// The task name.
    var name: String { get }
    /// The task options.
    var options: TaskOptions { get }
    /// Throws `SluiceError` with code `SL004` naming the first invalid name or option.
    func validate() throws
    /// The type-erased handler that the worker calls.
    var executor: TaskExecutor { get }
}

/// A type-erased handler: JSON input text and context in, JSON output text out.
public struct TaskExecutor: Sendable {
    let execute: @Sendable (String, TaskContext) async throws -> String
}
