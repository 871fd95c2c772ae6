import Foundation
import SluicePostgres

/// Encoding of inputs and outputs as JSON, with the checks PostgreSQL's jsonb needs.
enum JSONPayload {
    /// Encodes `value` as a JSON object for a run's input or metadata.
    ///
    /// - Throws: SL002 when the value does not encode to a JSON object, or when a string in it
    ///   contains a NUL character (jsonb cannot store `\u0000`); `encoding` when encoding fails.
    static func encodeObject<Value: Encodable>(_ value: Value, what: String) throws -> PostgresJSON {
        let text = try encode(value, what: what)
        guard text.first == "{" else {
            let kind = text.first.map { $0 == "[" ? "an array" : $0 == "\"" ? "a string" : "a scalar" } ?? "empty"
            throw SluiceError(
                code: .invalidPayload,
                message: "\(what) must encode to a JSON object, not \(kind); wrap the value in a struct with "
                    + "named fields")
        }
        return PostgresJSON(text)
    }

    /// The encoder of every payload. JSONEncoder guards its options with a lock, so tasks may
    /// encode with it at the same time.
    private static let encoder = JSONEncoder()

    /// Encodes `value` as JSON of any kind, for an output.
    static func encode<Value: Encodable>(_ value: Value, what: String) throws -> String {
        if value is Empty {
            return "{}"
        }
        let data: Data
        do {
            data = try encoder.encode(value)
        } catch {
            throw SluiceError(code: .encoding, message: "could not encode the \(what) as JSON: \(error)")
        }
        let text = String(decoding: data, as: UTF8.self)
        if containsNULEscape(data) {
            throw SluiceError(
                code: .invalidPayload,
                message: "the \(what) contains a string with a NUL character (U+0000), which PostgreSQL "
                    + "jsonb cannot store; remove it or encode the bytes (for example as base64 Data)")
        }
        return text
    }

    /// Returns whether JSON text contains the escape `\u0000`, which JSONEncoder writes for U+0000
    /// and jsonb rejects. Escaped backslashes are skipped, so `\\u0000` (a backslash followed by
    /// `u0000`) does not count.
    static func containsNULEscape(_ json: Data) -> Bool {
        let bytes = [UInt8](json)
        let zero = UInt8(ascii: "0")
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count {
                if bytes[index + 1] == UInt8(ascii: "u"), index + 5 < bytes.count,
                    bytes[(index + 2)...(index + 5)].allSatisfy({ $0 == zero })
                {
                    return true
                }
                index += 2
            } else {
                index += 1
            }
        }
        return false
    }

    /// Replaces each NUL character with the visible text `\u0000`, so an error message survives
    /// libpq, which cannot send NUL.
    static func escapingNUL(_ text: String) -> String {
        text.contains("\0") ? text.replacingOccurrences(of: "\0", with: "\\u0000") : text
    }
}
