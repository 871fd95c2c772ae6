import Foundation

let tool = CommandLineTool(console: .standard, environment: ProcessInfo.processInfo.environment)
let exitCode = await tool.run(Array(CommandLine.arguments.dropFirst()))
exit(exitCode.rawValue)
