import Foundation

// `sluice-bench worker ...` is the child-process mode that the end-to-end and memory scenarios
// start by running this same executable again; any other arguments run the benchmark.
let arguments = Array(CommandLine.arguments.dropFirst())
let status: Int32
if arguments.first == WorkerProcess.commandName {
    status = await WorkerProcess.main(arguments: Array(arguments.dropFirst()))
} else {
    status = await BenchRunner.main(arguments: arguments)
}
exit(status)
