/// An input or output with no fields, encoded as the JSON object `{}`.
///
/// Use it for tasks that take no input or return nothing:
/// `Sluice.task("cleanup") { (_: Empty, context) in ... }`.
public struct Empty: Codable, Sendable, Hashable {
    /// Creates the empty value.
    public init() {}
}
