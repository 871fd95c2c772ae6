/// Local checks of flow-control rules, with the limits of `sluice.define_task`, so that a
/// mistake is reported before any database call. The database checks again, and only it
/// parses SQL/JSON paths fully.
enum FlowValidation {
    /// Throws SL004 unless `key` is a non-empty key without NUL characters that starts with `$`
    /// when `requiresPath` is true.
    static func checkKey(_ option: String, _ key: String, requiresPath: Bool) throws {
        if key.isEmpty || key.contains("\u{0}") {
            throw SluiceError(
                code: .invalidOption,
                message: "invalid \(option) \"\(key.prefix(60))\": a key is a non-empty SQL/JSON path such as "
                    + "\"$.user_id\", or a constant, without NUL characters")
        }
        if requiresPath && !key.hasPrefix("$") {
            throw SluiceError(
                code: .invalidOption,
                message: "invalid \(option) \"\(key.prefix(60))\": a path starts with $, as in \"$.\(key.prefix(40))\"")
        }
    }

    /// Throws SL004 unless `name` can name a static rate limit: non-empty, without NUL
    /// characters and not starting with `$`.
    static func checkStaticName(_ name: String) throws {
        if name.isEmpty || name.contains("\u{0}") || name.hasPrefix("$") {
            throw SluiceError(
                code: .invalidOption,
                message: "invalid rate limit name \"\(name.prefix(60))\": a static rate limit name is non-empty "
                    + "and does not start with $; use .perKey(path, limit:per:) for a limit per input value")
        }
    }

    /// Throws SL004 unless `value` lies in `range`.
    static func checkInteger(_ option: String, _ value: Int, in range: ClosedRange<Int>) throws {
        if !range.contains(value) {
            throw SluiceError(
                code: .invalidOption,
                message: "invalid \(option): \(value); allowed values are \(range.lowerBound) to \(range.upperBound)")
        }
    }
}
