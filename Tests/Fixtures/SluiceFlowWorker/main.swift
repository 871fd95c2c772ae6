// A worker process for the flow-control tests in SluiceFlowControlTests, which kill it with
// SIGKILL mid-run.
//
// Usage: SluiceFlowWorker CONNECTION_STRING WORKER_NAME TASK
//
// TASK is one of:
//   flow-stress  concurrency 2 per input "key". Each attempt sleeps 1 to 15 ms and fails one
//                time in five (retryable, 3 attempts, no delay). 4 slots.
//   flow-solo    concurrency 1 per input "key", one attempt. An input with "hang": true sleeps
//                for two minutes; others return at once. 2 slots.
// Both use a lease timeout of 2 s, so a killed worker's runs are taken back about 2 s after
// its last heartbeat. The tests declare the same tasks through FlowTasks.
import Foundation
import Sluice

struct FlowInput: Codable, Sendable {
    var key: String
    var hang: Bool?
}

struct InjectedFailure: Error, CustomStringConvertible {
    var description: String { "injected failure" }
}

let arguments = CommandLine.arguments
guard arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: SluiceFlowWorker CONNECTION_STRING WORKER_NAME TASK\n".utf8))
    exit(2)
}
let connectionString = arguments[1]
let workerName = arguments[2]

let stress = Sluice.task(
    "flow-stress", retries: .fixed(maxAttempts: 3, delay: .zero), timeout: .seconds(60),
    concurrency: [.perKey("$.key", max: 2)]
) { (_: FlowInput, _: TaskContext) in
    try await Task.sleep(for: .milliseconds(Int.random(in: 1...15)))
    if Int.random(in: 0..<5) == 0 {
        throw InjectedFailure()
    }
}
let solo = Sluice.task(
    "flow-solo", retries: .none, timeout: .seconds(300), concurrency: [.perKey("$.key", max: 1)]
) { (input: FlowInput, _: TaskContext) in
    if input.hang == true {
        try await Task.sleep(for: .seconds(120))
    }
}

let task: any AnyTaskDefinition
let slots: Int
switch arguments[3] {
case "flow-stress":
    (task, slots) = (stress, 4)
case "flow-solo":
    (task, slots) = (solo, 2)
default:
    FileHandle.standardError.write(Data("unknown task \(arguments[3]); use flow-stress or flow-solo\n".utf8))
    exit(2)
}

let client = try await SluiceClient(connection: connectionString, logger: StandardErrorLogger(minimumLevel: .warning))
try await Worker(
    client: client, name: workerName, slots: slots, tasks: [task], leaseTimeout: .seconds(2),
    pollInterval: .milliseconds(100)
).run()
