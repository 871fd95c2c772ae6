// sluice-doc-indexer-demo: indexes every file under a directory with Sluice, end to end.
// See docs/example.md for what it does and how to read its summary.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

let options: DemoOptions
do {
    options = try DemoOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch let error as DemoError {
    FileHandle.standardError.write(Data("sluice-doc-indexer-demo: \(error.message)\n\n\(DemoOptions.usage)".utf8))
    exit(error.exitStatus)
}

do {
    try await DocIndexerJob(options: options).run()
    exit(0)
} catch let error as DemoError {
    FileHandle.standardError.write(Data("sluice-doc-indexer-demo: \(error.message)\n".utf8))
    exit(error.exitStatus)
} catch {
    FileHandle.standardError.write(Data("sluice-doc-indexer-demo: \(error)\n".utf8))
    exit(1)
}

/// Writes `line` and a newline to standard output at once, so progress shows also when the
/// output is a pipe (as under `make`), where `print` would buffer it.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
