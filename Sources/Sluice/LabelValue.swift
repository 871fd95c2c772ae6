/// The value of a worker label or of an affinity comparison: a string or an integer.
///
/// Integers compare as numbers and strings as text; comparing a string with an integer
/// compares their text. Literals work directly: `["gpu": "a100", "memory_gb": 80]`.
public enum LabelValue: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral
{
    /// A text value.
    case string(String)
    /// A whole-number value.
    case integer(Int)

    public init(stringLiteral value: String) {
        self = .string(value)
    }

    public init(integerLiteral value: Int) {
        self = .integer(value)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            self = .integer(number)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let text):
            try container.encode(text)
        case .integer(let number):
            try container.encode(number)
        }
    }

    /// The value as written in JSON: a quoted string or a number.
    public var description: String {
        switch self {
        case .string(let text):
            return "\"\(text)\""
        case .integer(let number):
            return String(number)
        }
    }
}
