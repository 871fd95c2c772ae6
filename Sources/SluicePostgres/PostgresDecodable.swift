import Foundation

/// A Swift type that can be created from a column value in PostgreSQL's text output format.
public protocol PostgresDecodable {
    /// Creates a value from a non-NULL column value; throws `PostgresDecodingFailure` when the
    /// text is not valid for the type.
    init(postgresText text: Substring) throws

    /// Returns the value for SQL NULL. The default throws, so only optionals accept NULL.
    static func decodeNull() throws -> Self
}

/// The reason a single value could not be decoded; `PostgresRow` wraps it into a
/// `PostgresError` of kind `.decoding` naming the column.
public struct PostgresDecodingFailure: Error, Sendable {
    /// The problem with the value, described without the value itself.
    public var reason: String

    /// Creates a failure with a reason that must not contain the value.
    public init(_ reason: String) {
        self.reason = reason
    }
}

extension PostgresDecodable {
    public static func decodeNull() throws -> Self {
        throw PostgresDecodingFailure("the value is NULL; decode an Optional to accept NULL")
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        self = try Wrapped(postgresText: text)
    }

    public static func decodeNull() throws -> Self {
        nil
    }
}

extension String: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        self = String(text)
    }
}

/// Parses a decimal integer of a fixed-width type, naming the type when it fails.
private func parseInteger<T: FixedWidthInteger>(_ text: Substring, as type: T.Type) throws -> T {
    guard let value = T(text, radix: 10) else {
        throw PostgresDecodingFailure("not a valid \(T.self) (invalid digits or out of range)")
    }
    return value
}

extension Int: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        self = try parseInteger(text, as: Int.self)
    }
}

extension Int32: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        self = try parseInteger(text, as: Int32.self)
    }
}

extension Int64: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        self = try parseInteger(text, as: Int64.self)
    }
}

extension Double: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        switch text {
        case "NaN":
            self = .nan
        case "Infinity":
            self = .infinity
        case "-Infinity":
            self = -.infinity
        default:
            guard let value = Double(text) else {
                throw PostgresDecodingFailure("not a valid floating-point number")
            }
            self = value
        }
    }
}

extension Bool: PostgresDecodable {
    /// Accepts PostgreSQL's boolean output `t` and `f`.
    public init(postgresText text: Substring) throws {
        switch text {
        case "t":
            self = true
        case "f":
            self = false
        default:
            throw PostgresDecodingFailure("not a boolean; expected t or f")
        }
    }
}

extension Date: PostgresDecodable {
    /// Parses `timestamptz`, `timestamp` (read as UTC) and `date` output in the ISO style, with
    /// or without a fraction; `infinity` and `-infinity` become `distantFuture` and `distantPast`.
    public init(postgresText text: Substring) throws {
        self = try PostgresTimestamp.parse(text)
    }
}

extension UUID: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        guard let value = UUID(uuidString: String(text)) else {
            throw PostgresDecodingFailure("not a valid UUID")
        }
        self = value
    }
}

extension Data: PostgresDecodable {
    /// Parses bytea in the hex output format (`\x0a1b`), PostgreSQL's default since 9.0.
    public init(postgresText text: Substring) throws {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"),
            utf8.count % 2 == 0
        else {
            throw PostgresDecodingFailure("not bytea in hex format; set bytea_output = 'hex'")
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = hexValue(utf8[index]), let low = hexValue(utf8[index + 1]) else {
                throw PostgresDecodingFailure("bytea contains a character that is not a hex digit")
            }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = Data(bytes)
    }
}

private func hexValue(_ character: UInt8) -> UInt8? {
    switch character {
    case UInt8(ascii: "0")...UInt8(ascii: "9"):
        return character - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"):
        return character - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"):
        return character - UInt8(ascii: "A") + 10
    default:
        return nil
    }
}

extension Array: PostgresDecodable where Element: PostgresDecodable {
    /// Parses a one-dimensional array in PostgreSQL's text output, including quoted elements and
    /// NULL; each element is decoded as `Element`, so `[String?]` accepts NULL elements.
    public init(postgresText text: Substring) throws {
        let elements = try PostgresArrayLiteral.parse(text)
        self = try elements.enumerated().map { position, element in
            do {
                if let element {
                    return try Element(postgresText: element[...])
                }
                return try Element.decodeNull()
            } catch let failure as PostgresDecodingFailure {
                throw PostgresDecodingFailure("array element \(position + 1): \(failure.reason)")
            }
        }
    }
}
