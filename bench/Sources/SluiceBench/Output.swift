import Foundation

/// Writes `text` and a newline to standard output in one unbuffered write, so progress shows
/// at once when the output goes to a file or a pipe (`print` buffers those). An output that
/// was closed, such as a pipe to `head` that exited, ends the printing but not the run, which
/// still stops its server and writes its report.
func printLine(_ text: String) {
    write(text + "\n", to: .standardOutput)
}

/// Writes `text` and a newline to standard error, ignoring an output that was closed.
func printError(_ text: String) {
    write(text + "\n", to: .standardError)
}

private func write(_ text: String, to handle: FileHandle) {
    try? handle.write(contentsOf: Data(text.utf8))
}
