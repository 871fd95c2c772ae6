import Foundation

/// Writes `text` and a newline to standard output in one unbuffered write, so progress shows
/// at once when the output goes to a file or a pipe (`print` buffers those).
func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
