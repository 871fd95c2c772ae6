import Foundation

/// A Swift value that can be sent as a statement parameter in PostgreSQL's text input format.
///
/// Parameters travel separately from the SQL (`$1`, `$2`, ...), so the text needs no SQL quoting.
public protocol PostgresEncodable {
    /// The value in PostgreSQL's text input format, or nil for SQL NULL.
    var postgresText: String? { get }
}

/// A value that can be an element of an encoded one-dimensional array parameter.
///
/// Arrays themselves do not conform, so nested Swift arrays cannot be encoded by mistake.
public protocol PostgresArrayElement: PostgresEncodable {}

extension String: PostgresArrayElement {
    public var postgresText: String? { self }
}

extension Int: PostgresArrayElement {
    public var postgresText: String? { String(self) }
}

extension Int32: PostgresArrayElement {
    public var postgresText: String? { String(self) }
}

extension Int64: PostgresArrayElement {
    public var postgresText: String? { String(self) }
}

extension Double: PostgresArrayElement {
    /// The shortest decimal text that reads back as the same value, or PostgreSQL's spelling of
    /// infinity and NaN.
    public var postgresText: String? {
        if isNaN {
            return "NaN"
        }
        if isInfinite {
            return self < 0 ? "-Infinity" : "Infinity"
        }
        return description
    }
}

extension Bool: PostgresArrayElement {
    public var postgresText: String? { self ? "t" : "f" }
}

extension Date: PostgresArrayElement {
    /// ISO 8601 in UTC with microseconds; `Date.distantFuture` and `Date.distantPast` are sent as
    /// `infinity` and `-infinity`, matching how they decode.
    public var postgresText: String? { PostgresTimestamp.format(self) }
}

extension UUID: PostgresArrayElement {
    public var postgresText: String? { uuidString.lowercased() }
}

extension Data: PostgresArrayElement {
    /// The bytea hex format, `\x` followed by two lowercase hex digits per byte.
    public var postgresText: String? {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        bytes.reserveCapacity(2 + count * 2)
        for byte in self {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? { self?.postgresText }
}

extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement {}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    /// A one-dimensional array literal such as `{"a","b\"c",NULL}`.
    ///
    /// The elements are mapped with a closure because this getter runs unspecialized when the
    /// array is a parameter, and there the key path `\.postgresText` was built on every call.
    /// That took 4% of the CPU of an SDK worker draining no-op runs.
    public var postgresText: String? { PostgresArrayLiteral.format(map { $0.postgresText }) }
}
