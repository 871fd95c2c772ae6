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
        // share of a busy worker's CPU. JSONDecoder guards its options with a lock, so the
        // exchanges of several lanes may decode with it at the same time.
        let decoder = JSONDecoder()
        return TaskExecutor { [handler, name] inputs in
            Self.decodeInputs(inputs, with: decoder).map { decoded in
                TaskExecutor.Invocation { context in
                    let input: Input
                    switch decoded {
                    case .success(let value):
                        input = value
                    case .failure(let error):
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
    }

    /// Decodes each JSON input as `Input`, in order.
    ///
    /// Several inputs are decoded in one call, as the elements of one JSON array, because each
    /// `JSONDecoder.decode` call has a fixed cost. In a micro-benchmark of a one-field input
    /// (Swift 6.3 on Linux) it was about 40% of the decoding time. When the array does not
    /// decode, each input is decoded alone, so that a failure reports that input's own error and
    /// the other inputs still decode.
    ///
    /// NOTE: In the array, `decoder.codingPath` in an `init(from:)` contains the element's index,
    /// but it is empty when an input is decoded alone.
    static func decodeInputs(_ inputs: [String], with decoder: JSONDecoder) -> [Result<Input, any Error>] {
        if inputs.count > 1 {
            var array: [UInt8] = [UInt8(ascii: "[")]
            array.reserveCapacity(inputs.reduce(2) { $0 + $1.utf8.count + 1 })
            for (position, input) in inputs.enumerated() {
                if position > 0 {
                    array.append(UInt8(ascii: ","))
                }
                array.append(contentsOf: input.utf8)
            }
            array.append(UInt8(ascii: "]"))
            // The inputs are jsonb output, each one JSON value, so the array has one element
            // per input. The count check guards against text that is not.
            if let decoded = try? decoder.decode([Input].self, from: Data(array)), decoded.count == inputs.count {
                return decoded.map { .success($0) }
            }
        }
        return inputs.map { input in
            Result { try decoder.decode(Input.self, from: Data(input.utf8)) }
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

/// A type-erased handler that decodes the JSON inputs of several runs at once and returns, for
/// each input, the handler call on the decoded value.
public struct TaskExecutor: Sendable {
    /// One handler call with its input decoded. It takes the attempt's context and returns the
    /// handler's output as JSON text. It throws what the handler throws, and a
    /// `NonRetryableError` when the input did not decode or the output does not encode.
    struct Invocation: Sendable {
        let execute: @Sendable (TaskContext) async throws -> String
    }

    /// Decodes the inputs and returns one invocation per input, in the same order.
    let prepare: @Sendable ([String]) -> [Invocation]
}
