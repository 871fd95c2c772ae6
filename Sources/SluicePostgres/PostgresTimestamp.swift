import Foundation

/// Conversion between `Date` and PostgreSQL timestamp text, in UTC and with microsecond
/// precision (the resolution of `timestamptz`).
///
/// Dates are converted with proleptic Gregorian calendar arithmetic instead of `DateFormatter`,
/// which is slow and not `Sendable`.
enum PostgresTimestamp {
    private static let microsecondsPerSecond: Int64 = 1_000_000
    private static let secondsPerDay: Int64 = 86_400

    /// Formats a date as `2026-12-04T19:53:11.123456Z`, rounded to the nearest microsecond.
    /// Years before 1 AD get PostgreSQL's ` BC` suffix.
    static func format(_ date: Date) -> String {
        // Only the exact sentinels map to infinity, because real dates before 1 AD are earlier
        // than `distantPast`.
        if date == Date.distantFuture {
            return "infinity"
        }
        if date == Date.distantPast {
            return "-infinity"
        }
        let microseconds = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let seconds = floorDivide(microseconds, microsecondsPerSecond)
        let fraction = microseconds - seconds * microsecondsPerSecond
        let days = floorDivide(seconds, secondsPerDay)
        let secondOfDay = seconds - days * secondsPerDay
        let (year, month, day) = civilDate(daysSinceEpoch: days)

        let isBeforeCommonEra = year <= 0
        let displayYear = isBeforeCommonEra ? 1 - year : year
        var text = pad(displayYear, 4) + "-" + pad(month, 2) + "-" + pad(day, 2)
        text += "T" + pad(secondOfDay / 3600, 2) + ":" + pad(secondOfDay / 60 % 60, 2)
        text += ":" + pad(secondOfDay % 60, 2) + "." + pad(fraction, 6) + "Z"
        return isBeforeCommonEra ? text + " BC" : text
    }

    /// Parses `YYYY-MM-DD[( |T)HH:MM:SS[.ffffff]][(+|-)HH[:MM[:SS]]|Z][ BC]`, `infinity` and
    /// `-infinity`. A value without an offset is read as UTC.
    static func parse(_ text: Substring) throws -> Date {
        switch text {
        case "infinity":
            return Date.distantFuture
        case "-infinity":
            return Date.distantPast
        default:
            break
        }
        var scanner = ByteScanner(Array(text.utf8))
        let invalid = PostgresDecodingFailure(
            "not a timestamp in ISO format (YYYY-MM-DD HH:MM:SS[.ffffff][+HH]); set DateStyle = 'ISO'")

        guard var year = scanner.number(minDigits: 4, maxDigits: 9), scanner.skip("-"),
            let month = scanner.number(minDigits: 2, maxDigits: 2), scanner.skip("-"),
            let day = scanner.number(minDigits: 2, maxDigits: 2)
        else { throw invalid }

        var secondOfDay: Int64 = 0
        var fraction: Int64 = 0
        if scanner.skip(" ") || scanner.skip("T") {
            guard let hour = scanner.number(minDigits: 2, maxDigits: 2), scanner.skip(":"),
                let minute = scanner.number(minDigits: 2, maxDigits: 2), scanner.skip(":"),
                let second = scanner.number(minDigits: 2, maxDigits: 2)
            else { throw invalid }
            secondOfDay = hour * 3600 + minute * 60 + second
            if scanner.skip(".") {
                let start = scanner.position
                guard var digits = scanner.number(minDigits: 1, maxDigits: 6) else { throw invalid }
                for _ in (scanner.position - start)..<6 {
                    digits *= 10
                }
                fraction = digits
            }
        }

        var offsetSeconds: Int64 = 0
        if scanner.skip("Z") {
            offsetSeconds = 0
        } else if let sign = scanner.sign() {
            guard let hours = scanner.number(minDigits: 2, maxDigits: 2) else { throw invalid }
            var offset = hours * 3600
            if scanner.skip(":") {
                guard let minutes = scanner.number(minDigits: 2, maxDigits: 2) else { throw invalid }
                offset += minutes * 60
                if scanner.skip(":") {
                    guard let seconds = scanner.number(minDigits: 2, maxDigits: 2) else { throw invalid }
                    offset += seconds
                }
            }
            offsetSeconds = sign * offset
        }
        if scanner.skip(" BC") {
            year = 1 - year
        }
        guard scanner.isAtEnd, (1...12).contains(month), (1...31).contains(day) else { throw invalid }

        let days = daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * secondsPerDay + secondOfDay - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + Double(fraction) / 1_000_000)
    }

    /// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day), where year 0
    /// is 1 BC. Works in 400-year eras of 146,097 days.
    static func civilDate(daysSinceEpoch days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468  // days from 0000-03-01 to 1970-01-01
        let era = floorDivide(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153  // 0 is March
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// Converts a proleptic Gregorian date (year 0 is 1 BC) to days since 1970-01-01.
    static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let marchYear = month <= 2 ? year - 1 : year
        let era = floorDivide(marchYear, 400)
        let yearOfEra = marchYear - era * 400
        let shiftedMonth = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return (value % divisor < 0) ? quotient - 1 : quotient
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

/// A cursor over ASCII bytes for the timestamp parser.
private struct ByteScanner {
    private let bytes: [UInt8]
    private(set) var position = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { position == bytes.count }

    /// Consumes `literal` if the remaining bytes start with it.
    mutating func skip(_ literal: String) -> Bool {
        let expected = Array(literal.utf8)
        guard bytes.count - position >= expected.count,
            Array(bytes[position..<position + expected.count]) == expected
        else { return false }
        position += expected.count
        return true
    }

    /// Consumes a `+` or `-` and returns 1 or -1.
    mutating func sign() -> Int64? {
        if skip("+") {
            return 1
        }
        if skip("-") {
            return -1
        }
        return nil
    }

    /// Consumes between `minDigits` and `maxDigits` decimal digits.
    mutating func number(minDigits: Int, maxDigits: Int) -> Int64? {
        var value: Int64 = 0
        var count = 0
        while count < maxDigits, position < bytes.count,
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position])
        {
            value = value * 10 + Int64(bytes[position] - UInt8(ascii: "0"))
            position += 1
            count += 1
        }
        return count >= minDigits ? value : nil
    }
}
