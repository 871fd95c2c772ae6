import Foundation

/// A logger that writes one logfmt line per event to standard error, for example
/// `time=2024-05-01T12:00:00.000Z level=info msg="run started" run_id=42 task=send-receipt`.
///
/// Metadata keys are written in sorted order after `msg`. Values with spaces, quotes, `=` or
/// control characters are quoted, with `"` and `\` escaped and newlines written as `\n`.
public struct StandardErrorLogger: SluiceLogger {
    /// The least severe level that is written; default `.info`.
    public var minimumLevel: LogLevel

    /// Creates a logger that writes events at `minimumLevel` (default `.info`) and above.
    public init(minimumLevel: LogLevel = .info) {
        self.minimumLevel = minimumLevel
    }

    public func isEnabled(_ level: LogLevel) -> Bool {
        level >= minimumLevel
    }

    public func log(level: LogLevel, message: String, metadata: [String: String]) {
        guard isEnabled(level) else {
            return
        }
        let line = Self.format(date: Date(), level: level, message: message, metadata: metadata) + "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Formats one event as a logfmt line without the trailing newline.
    static func format(date: Date, level: LogLevel, message: String, metadata: [String: String]) -> String {
        var fields = [
            "time=" + date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)),
            "level=\(level)",
            "msg=" + quote(message),
        ]
        for key in metadata.keys.sorted() {
            fields.append("\(key)=\(quote(metadata[key] ?? ""))")
        }
        return fields.joined(separator: " ")
    }

    /// Quotes a logfmt value when it is empty or contains a space, `=`, `"` or a control character.
    static func quote(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains { scalar in
            scalar == " " || scalar == "=" || scalar == "\"" || scalar.value < 0x20 || scalar.value == 0x7f
        }
        guard needsQuotes else {
            return value
        }
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    quoted += String(format: "\\u%04x", scalar.value)
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }
}
