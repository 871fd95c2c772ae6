/// Parses durations written as a number and a unit: `500ms`, `10s`, `5m`, `1h`.
enum DurationParser {
    /// The accepted units and their length in milliseconds.
    static let units: [(suffix: String, milliseconds: Int64)] = [
        ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000),
    ]

    /// Returns the duration in milliseconds, or throws a usage error naming `option` and the
    /// accepted forms.
    static func milliseconds(_ text: String, option: String) throws -> Int64 {
        let invalid = CommandLineUsageError(
            message: "invalid value '\(text)' for --\(option); expected a whole number with a unit "
                + "ms, s, m or h, such as 500ms, 10s, 5m or 1h",
            command: nil)
        // "ms" is checked before "m" and "s", so "500ms" is not read as 500m followed by s.
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            guard !number.isEmpty, number.allSatisfy(\.isASCII), number.allSatisfy(\.isNumber),
                let value = Int64(number)
            else { throw invalid }
            let (product, overflow) = value.multipliedReportingOverflow(by: factor)
            guard !overflow else { throw invalid }
            return product
        }
        throw invalid
    }

    /// Returns a PostgreSQL interval literal for a number of milliseconds, such as `1500 milliseconds`.
    static func intervalText(milliseconds: Int64) -> String {
        "\(milliseconds) milliseconds"
    }
}
