import Foundation

/// A worker child process: this executable started again in `worker` mode, spoken to by lines
/// on its standard input and output. Its standard error goes to ours.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` and the pipes are set up in init and only read afterwards; the line
    // iterator is used by one caller at a time.

    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var lines: AsyncStream<String>.AsyncIterator

    /// Starts `sluice-bench worker` with `arguments`.
    init(arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).resolvingSymlinksInPath()
        process.arguments = [WorkerProcess.commandName] + arguments
        process.standardInput = input
        process.standardOutput = output
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        lines = stream.makeAsyncIterator()
        let reading = output.fileHandleForReading
        let thread = Thread {
            var buffer = Data()
            while true {
                let chunk = reading.availableData
                if chunk.isEmpty {
                    break
                }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    continuation.yield(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
                    buffer.removeSubrange(buffer.startIndex...newline)
                }
            }
            continuation.finish()
        }
        try process.run()
        thread.start()
    }

    var pid: Int32 {
        process.processIdentifier
    }

    /// Sends one line to the child's standard input.
    func send(_ line: String) {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// Reads lines until one starts with `prefix` and returns the rest of it.
    ///
    /// - Throws: when the child exits first.
    func expect(_ prefix: String) async throws -> String {
        while let line = await lines.next() {
            if line.hasPrefix(prefix) {
                return String(line.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
            }
        }
        process.waitUntilExit()
        throw BenchError.failed(
            "worker process \(pid) exited with status \(process.terminationStatus) before printing \"\(prefix)\"")
    }

    /// Waits for the child to exit, without blocking a thread of the cooperative pool.
    func waitForExit() async -> Int32 {
        await Task.detached { [process] in
            process.waitUntilExit()
            return process.terminationStatus
        }.value
    }

    /// Returns a field of /proc/PID/status in kilobytes, such as `VmRSS` or `VmHWM`.
    func statusKilobytes(_ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }
}
