import Foundation

/// A Swift type that can be created from a column value in PostgreSQL's text output format.
public protocol PostgresDecodable {
    /// Creates a value from a non-NULL column value; throws `PostgresDecodingFailure` when the
    /// text is not valid for the type.
    init(postgresText text: Substring) throws

    /// Creates a value from the UTF-8 text of a non-NULL column value. The bytes are valid only
    /// during the call. Throws `PostgresDecodingFailure` when the text is not valid for the type.
    ///
    /// The default implementation makes a string and calls `init(postgresText:)`. The integer
    /// types parse the bytes without making a string.
    init(postgresBytes bytes: UnsafeRawBufferPointer) throws

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
    public init(postgresBytes bytes: UnsafeRawBufferPointer) throws {
        try self.init(postgresText: String(decoding: bytes, as: UTF8.self)[...])
    }

    public static func decodeNull() throws -> Self {
        throw PostgresDecodingFailure("the value is NULL; decode an Optional to accept NULL")
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        self = try Wrapped(postgresText: text)
    }

    public init(postgresBytes bytes: UnsafeRawBufferPointer) throws {
        self = try Wrapped(postgresBytes: bytes)
    }

    public static func decodeNull() throws -> Self {
        nil
    }
}

extension String: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        self = String(text)
    }

    /// Makes the string from the bytes at once. Inputs and outputs of up to 16 MiB are read
    /// this way, and the default would copy them a second time.
    public init(postgresBytes bytes: UnsafeRawBufferPointer) throws {
        self = String(decoding: bytes, as: UTF8.self)
    }
}

/// Parses a decimal integer of a fixed-width type, naming the type when it fails.
private func parseInteger<T: FixedWidthInteger>(_ text: Substring, as type: T.Type) throws -> T {
    guard let value = T(text, radix: 10) else {
        throw PostgresDecodingFailure("not a valid \(T.self) (invalid digits or out of range)")
    }
    return value
}

/// Parses a decimal integer from UTF-8 bytes, accepting what `T(text, radix: 10)` accepts in
/// text: an optional `+` or `-`, then at least one digit, and nothing else. A worker decodes
/// five integer columns of every claimed run, and making a string for each took about 1.5% of
/// its CPU.
func parseInteger<T: FixedWidthInteger>(_ bytes: UnsafeRawBufferPointer, as type: T.Type) throws -> T {
    let invalid = PostgresDecodingFailure("not a valid \(T.self) (invalid digits or out of range)")
    var index = 0
    var isNegative = false
    if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
        isNegative = sign == UInt8(ascii: "-")
        index = 1
    }
    guard index < bytes.count else {
        throw invalid
    }
    // A negative value is accumulated downwards, so that T.min, which has no positive
    // counterpart, parses too.
    var value: T = 0
    while index < bytes.count {
        let digit = bytes[index] &- UInt8(ascii: "0")
        guard digit < 10 else {
            throw invalid
        }
        let (shifted, shiftOverflow) = value.multipliedReportingOverflow(by: 10)
        let (next, digitOverflow) =
            isNegative
            ? shifted.subtractingReportingOverflow(T(digit)) : shifted.addingReportingOverflow(T(digit))
        guard !shiftOverflow, !digitOverflow else {
            throw invalid
        }
        value = next
        index += 1
    }
    return value
}

extension Int: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        self = try parseInteger(text, as: Int.self)
    }

    public init(postgresBytes bytes: UnsafeRawBufferPointer) throws {
        self = try parseInteger(bytes, as: Int.self)
    }
}

extension Int32: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        self = try parseInteger(text, as: Int32.self)
    }

    public init(postgresBytes bytes: UnsafeRawBufferPointer) throws {
        self = try parseInteger(bytes, as: Int32.self)
    }
}

extension Int64: PostgresDecodable {
    public init(postgresText text: Substring) throws {
        self = try parseInteger(text, as: Int64.self)
    }

    public init(postgresBytes bytes: UnsafeRawBufferPointer) throws {
        self = try parseInteger(bytes, as: Int64.self)
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
