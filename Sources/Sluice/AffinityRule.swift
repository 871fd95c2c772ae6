/// A comparison of a worker label with a value, such as `.greaterOrEqual(64)`.
///
/// Integers compare as numbers and strings as text. A worker without the label never matches.
public struct LabelComparison: Sendable, Hashable {
    /// The SQL comparator: `=`, `!=`, `>`, `>=`, `<` or `<=`.
    public var comparator: String
    /// The value the label is compared with.
    public var value: LabelValue

    /// Creates a comparison from a comparator's text; an unknown comparator is rejected with
    /// `SL004` when the task is defined. Prefer the named factories such as `.equal(_:)`.
    public init(_ comparator: String, _ value: LabelValue) {
        self.comparator = comparator
        self.value = value
    }

    /// Matches a label equal to `value`.
    public static func equal(_ value: LabelValue) -> LabelComparison { LabelComparison("=", value) }
    /// Matches a label different from `value`.
    public static func notEqual(_ value: LabelValue) -> LabelComparison { LabelComparison("!=", value) }
    /// Matches a label greater than `value`.
    public static func greater(_ value: LabelValue) -> LabelComparison { LabelComparison(">", value) }
    /// Matches a label greater than or equal to `value`.
    public static func greaterOrEqual(_ value: LabelValue) -> LabelComparison { LabelComparison(">=", value) }
    /// Matches a label less than `value`.
    public static func less(_ value: LabelValue) -> LabelComparison { LabelComparison("<", value) }
    /// Matches a label less than or equal to `value`.
    public static func lessOrEqual(_ value: LabelValue) -> LabelComparison { LabelComparison("<=", value) }

    /// The comparators the database accepts.
    static let comparators: Set<String> = ["=", "!=", ">", ">=", "<", "<="]
}

/// A routing rule over worker labels: a requirement that filters workers, or a weighted
/// preference among the workers that meet every requirement.
///
/// Maps onto one element of `sluice.define_task(affinity => ...)`:
/// `{"label", "op", "value", "required", "weight"}`. A run of the task starts only on a worker
/// that meets every required rule. Among live workers with free slots, it starts on one whose
/// preference score (the sum of the weights of the preferred rules it meets) is the highest.
///
/// ```swift
/// Sluice.task("render", affinity: [.require("gpu", .equal("a100")),
///                                  .prefer("memory_gb", .greaterOrEqual(64), weight: 5)]) { ... }
/// ```
public struct AffinityRule: Sendable, Hashable, Encodable {
    /// The worker label compared.
    public var label: String
    /// The comparison the label must pass.
    public var comparison: LabelComparison
    /// True for a requirement, false for a preference.
    public var required: Bool
    /// The score a preference adds, 1 to 1000; 1 for a requirement, where it is unused.
    public var weight: Int

    /// Requires workers whose label `label` passes `comparison`.
    public static func require(_ label: String, _ comparison: LabelComparison) -> AffinityRule {
        AffinityRule(label: label, comparison: comparison, required: true, weight: 1)
    }

    /// Prefers workers whose label `label` passes `comparison`, adding `weight` (1 to 1000;
    /// default 1) to their score.
    public static func prefer(_ label: String, _ comparison: LabelComparison, weight: Int = 1) -> AffinityRule {
        AffinityRule(label: label, comparison: comparison, required: false, weight: weight)
    }

    private enum CodingKeys: String, CodingKey {
        case label, op, value, required, weight
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(label, forKey: .label)
        try container.encode(comparison.comparator, forKey: .op)
        try container.encode(comparison.value, forKey: .value)
        try container.encode(required, forKey: .required)
        try container.encode(weight, forKey: .weight)
    }

    /// Throws `SluiceError` with code `SL004` naming the invalid value.
    func validate() throws {
        if label.isEmpty || label.contains("\u{0}") {
            throw SluiceError(
                code: .invalidOption,
                message: "invalid affinity label \"\(label.prefix(60))\": a label name is a non-empty string "
                    + "without NUL characters")
        }
        if !LabelComparison.comparators.contains(comparison.comparator) {
            throw SluiceError(
                code: .invalidOption,
                message: "invalid affinity comparator \"\(comparison.comparator.prefix(20))\" for label \"\(label)\"; "
                    + "the comparators are =, !=, >, >=, < and <=")
        }
        try FlowValidation.checkInteger("affinity weight for label \"\(label)\"", weight, in: 1...1000)
    }
}
