import Foundation

/// Local checks of names and options, with the same limits and codes as the SQL functions, so
/// a mistake is reported before any database call. The database checks again.
enum Validation {
    /// Throws SL004 unless `name` is 1 to 128 characters of letters, digits and `_ . : / -`,
    /// starting with a letter or digit: the rule of `sluice._check_name`.
    static func checkName(_ kind: String, _ name: String) throws {
        let scalars = Array(name.unicodeScalars)
        let isAllowed: (Unicode.Scalar) -> Bool = { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "_.:/-".unicodeScalars.contains(scalar))
        }
        let isValid = (1...128).contains(scalars.count)
            && scalars[0].isASCII && CharacterSet.alphanumerics.contains(scalars[0])
            && scalars.allSatisfy(isAllowed)
        if !isValid {
            throw SluiceError(
                code: .invalidOption,
                message: "invalid \(kind) \"\(name.prefix(140))\": a \(kind) is 1 to 128 characters of letters, "
                    + "digits and _ . : / -, starting with a letter or digit")
        }
    }

    /// Throws SL004 unless `value` lies in `range`. Integers, fractions and durations print
    /// as written, so the message names the value in the caller's units.
    static func check<Value: Comparable>(_ option: String, _ value: Value, in range: ClosedRange<Value>) throws {
        if !range.contains(value) {
            throw SluiceError(
                code: .invalidOption,
                message: "invalid \(option): \(value); allowed values are \(range.lowerBound) to \(range.upperBound)")
        }
    }
}

extension Duration {
    /// The duration in seconds as a floating-point number.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// The duration as PostgreSQL interval text with microsecond precision, such as
    /// `1.500000 seconds`.
    var intervalText: String {
        let microseconds = components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
        let sign = microseconds < 0 ? "-" : ""
        let magnitude = microseconds.magnitude
        return "\(sign)\(magnitude / 1_000_000).\(String(format: "%06d", Int(magnitude % 1_000_000))) seconds"
    }
}
