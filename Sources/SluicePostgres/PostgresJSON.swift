import Foundation

/// Raw JSON text, sent to and read from `json` and `jsonb` columns unchanged.
public struct PostgresJSON: PostgresArrayElement, PostgresDecodable, Hashable, Sendable {
    /// The JSON document as text.
    public var text: String

    /// Wraps JSON text without validating it; the server validates it on input.
    public init(_ text: String) {
        self.text = text
    }

    /// Encodes `value` with `encoder` (a default `JSONEncoder` when omitted).
    public init<Value: Encodable>(encoding value: Value, encoder: JSONEncoder = JSONEncoder()) throws {
        text = String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Decodes the JSON text into `type` with `decoder` (a default `JSONDecoder` when omitted).
    public func decode<Value: Decodable>(
        _ type: Value.Type, decoder: JSONDecoder = JSONDecoder()
    ) throws -> Value {
        try decoder.decode(type, from: Data(text.utf8))
    }

    public var postgresText: String? { text }

    public init(postgresText text: Substring) throws {
        self.text = String(text)
    }
}
