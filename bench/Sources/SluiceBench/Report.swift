import Foundation

/// One measured figure.
struct Figure: Codable, Sendable {
    var scenario: String
    var name: String
    var value: Double
    var unit: String
    var note: String?
}

/// A target from the benchmark brief and whether this run met it.
struct TargetCheck: Codable, Sendable {
    var name: String
    var measured: String
    var target: String
    var met: Bool
}

/// One row of pg_stat_statements.
struct StatementStatistics: Codable, Sendable {
    var query: String
    var topLevel: Bool
    var calls: Int
    var totalMilliseconds: Double
    var meanMilliseconds: Double
    var sharedBlocksHit: Int
    var sharedBlocksRead: Int
}

/// Everything a run produced; written as JSON and summarized as Markdown.
struct Report: Codable, Sendable {
    var date: String
    var command: String
    var quick: Bool
    var machine: [String: String]
    var settings: [String: String]
    var figures: [Figure] = []
    var targets: [TargetCheck] = []
    var topStatements: [StatementStatistics] = []
    var plans: [String: String] = [:]
    var notes: [String] = []
}

/// Collects figures while scenarios run and prints each as it arrives.
final class ReportBuilder: @unchecked Sendable {
    // @unchecked: scenarios run one after another on one task.

    private(set) var report: Report

    init(report: Report) {
        self.report = report
    }

    /// Records a figure and prints it.
    @discardableResult
    func add(_ scenario: ScenarioName, _ name: String, _ value: Double, _ unit: String, note: String? = nil) -> Double {
        report.figures.append(Figure(scenario: scenario.rawValue, name: name, value: value, unit: unit, note: note))
        let padded = name.count < 60 ? name + String(repeating: " ", count: 60 - name.count) : name
        printLine("  \(padded) \(String(format: "%12.1f", value)) \(unit)" + (note.map { "  (\($0))" } ?? ""))
        return value
    }

    /// Records the median of one figure's rounds and returns it. With several rounds the note
    /// lists each round's value.
    @discardableResult
    func addMedian(_ scenario: ScenarioName, _ name: String, _ values: [Double], _ unit: String, note: String? = nil)
        -> Double
    {
        var parts = note.map { [$0] } ?? []
        if values.count > 1 {
            parts.append("median of rounds " + values.map { String(format: "%.0f", $0) }.joined(separator: ", "))
        }
        return add(scenario, name, PairedFigures.median(values), unit, note: parts.isEmpty ? nil : parts.joined(separator: "; "))
    }

    /// Records a ratio target `measured / reference >= minimum`, or a note when the reference
    /// figure was not measured in this run.
    func checkRatio(_ name: String, measured: Double?, reference: Double?, minimum: Double) {
        guard let measured, let reference, reference > 0 else {
            note("\(name): not checked, a figure is missing")
            return
        }
        let ratio = measured / reference
        check(name, measured: String(format: "%.1f%% (%.0f / %.0f)", ratio * 100, measured, reference),
              target: String(format: ">= %.0f%%", minimum * 100), met: ratio >= minimum)
    }

    /// Records a ratio target over a paired measurement: the median of the rounds' ratios must
    /// be at least `minimum`. The measured text gives that median with the figures of the
    /// median round (of the two middle rounds for an even count) and, with several rounds,
    /// each round's ratio. Rounds without a floor figure are left out.
    func checkRatio(_ name: String, _ pair: PairedFigures, minimum: Double) {
        let rounds = pair.comparableRounds
        guard !rounds.isEmpty else {
            note("\(name): not checked, no round has a floor figure")
            return
        }
        let ratio = PairedFigures.median(rounds.map(\.ratio))
        let sorted = rounds.sorted { $0.ratio < $1.ratio }
        let middle = sorted.count % 2 == 1 ? [sorted[sorted.count / 2]] : [sorted[sorted.count / 2 - 1], sorted[sorted.count / 2]]
        var measured = String(format: "%.1f%% (", ratio * 100)
            + middle.map { String(format: "%.0f / %.0f", $0.sluice, $0.floor) }.joined(separator: " and ")
        if rounds.count > 1 {
            measured += "; rounds " + rounds.map { String(format: "%.1f%%", $0.ratio * 100) }.joined(separator: ", ")
        }
        check(name, measured: measured + ")", target: String(format: ">= %.0f%%", minimum * 100), met: ratio >= minimum)
    }

    func check(_ name: String, measured: String, target: String, met: Bool) {
        report.targets.append(TargetCheck(name: name, measured: measured, target: target, met: met))
        printLine("  target \(met ? "met" : "MISSED"): \(name): \(measured), target \(target)")
    }

    func note(_ text: String) {
        report.notes.append(text)
        printLine("  note: \(text)")
    }

    func setTopStatements(_ statements: [StatementStatistics]) {
        report.topStatements = statements
    }

    func setPlan(_ name: String, _ plan: String) {
        report.plans[name] = plan
    }

    /// Writes the JSON report to `path` and a Markdown summary next to it.
    func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(to: url)
        try markdown().write(to: url.deletingPathExtension().appendingPathExtension("md"), atomically: true, encoding: .utf8)
    }

    /// Formats the figures, targets, top statements and plans as Markdown.
    func markdown() -> String {
        var text = "Run \(report.date) `\(report.command)`\(report.quick ? " (quick: sizes too small to compare)" : "")\n\n"
        text += "Machine: " + report.machine.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            .joined(separator: ", ") + "\n\n"
        text += "Settings: " + report.settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            .joined(separator: ", ") + "\n\n"
        text += "| scenario | figure | value | unit | note |\n|---|---|---:|---|---|\n"
        for figure in report.figures {
            text += "| \(figure.scenario) | \(figure.name) | \(String(format: "%.1f", figure.value)) | \(figure.unit) | \(figure.note ?? "") |\n"
        }
        text += "\n| target | measured | required | met |\n|---|---|---|---|\n"
        for target in report.targets {
            text += "| \(target.name) | \(target.measured) | \(target.target) | \(target.met ? "yes" : "**no**") |\n"
        }
        if !report.notes.isEmpty {
            text += "\nNotes:\n\n" + report.notes.map { "- \($0)\n" }.joined()
        }
        if !report.topStatements.isEmpty {
            text += "\nTop statements by total time (pg_stat_statements, end-to-end scenario):\n\n"
            text += "| top level | calls | total ms | mean ms | blocks hit | blocks read | query |\n|---|---:|---:|---:|---:|---:|---|\n"
            for statement in report.topStatements {
                let query = statement.query.replacingOccurrences(of: "\n", with: " ")
                    .replacingOccurrences(of: "|", with: "\\|")
                    .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                text += "| \(statement.topLevel ? "yes" : "no") | \(statement.calls) | "
                    + String(format: "%.0f | %.3f", statement.totalMilliseconds, statement.meanMilliseconds)
                    + " | \(statement.sharedBlocksHit) | \(statement.sharedBlocksRead) | `\(query.prefix(160))` |\n"
            }
        }
        for (name, plan) in report.plans.sorted(by: { $0.key < $1.key }) {
            text += "\nPlan: \(name)\n\n```\n\(plan)\n```\n"
        }
        return text
    }
}
