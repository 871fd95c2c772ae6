/// A server command that failed, with what it printed and the end of the server log.
public struct EmbeddedPostgresError: Error, Sendable, CustomStringConvertible {
    /// The command line that failed.
    public var command: String
    /// The exit status, or nil when the command could not be started.
    public var status: Int32?
    /// The command's standard output and standard error.
    public var output: String
    /// The last lines of `server.log`, empty when there is no log yet.
    public var serverLogTail: String

    /// Creates an error for `command`; `status` is nil when the command could not be started.
    public init(command: String, status: Int32?, output: String, serverLogTail: String) {
        self.command = command
        self.status = status
        self.output = output
        self.serverLogTail = serverLogTail
    }

    public var description: String {
        var text = "command failed"
        if let status {
            text += " with exit status \(status)"
        }
        text += ": \(command)"
        if !output.isEmpty {
            text += "\n\(output)"
        }
        if !serverLogTail.isEmpty {
            text += "\nserver.log (last lines):\n\(serverLogTail)"
        }
        return text
    }
}
